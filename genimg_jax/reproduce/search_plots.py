"""Figures of random searches (genimg_jax/search.py's search.json), drawn with Pillow:

    python -m genimg_jax.reproduce.search_plots W/search.json [W2/search.json ...] \\
        [--out docs/images] [--name search] [--source_points 100]

- `<name>_fid_box.png`: the distribution of the score over each search's points, one box per
  search, as Lucic et al. 2018 draw FID over their hyper-parameter points: the box spans the
  quartiles, the line is the median, whiskers reach the furthest point within 1.5 × the box's
  height, points beyond are drawn one by one; failed (diverged) points are counted under it.
- `<name>_budget.png`: the best score against the number of points tried, k = 1 … P: the
  median over 1,000 random orders of the points (numpy default_rng(0)) of the best of the
  first k, and its 10-90 % band, as Lucic et al. plot min FID against the budget. A failed point counts as
  tried, with no score.

A search is labelled "reduced" when it tried fewer points than the source (`--source_points`,
100: Lucic et al.'s wide phase) or trained fewer steps than its model's config file
(configs/<model>.py's num_steps: compare_gan's run length for the Lucic models).
"""

import argparse
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genimg_jax.errors import UserError, exit_on_user_error

WIDTH, HEIGHT = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 60, 70  # Margins around the plot area.
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))
SCORE_NAMES = {"fid_classifier": "FID [clf]", "fid_inception": "FID [inc]",
               "fid_inception_lucic": "FID [inc, lucic preprocessing]"}
ORDERS = 1_000  # Random orders of the points behind the budget curve.


def read(path: str) -> dict:
  """A search.json; one line if it is missing or is not one."""
  try:
    with open(path) as f:
      result = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read the search result {path} ({e}): pass a search.json that "
                    f"python -m genimg_jax.search wrote") from None
  if not isinstance(result, dict) or not isinstance(result.get("points"), list):
    raise UserError(f"{path} is not a search result (no 'points'): pass a search.json")
  return result


def scores(result: dict) -> np.ndarray:
  """Each point's score, NaN for a failed point, in point order."""
  return np.array([p["score"] if not p["failed"] and p["score"] is not None else np.nan
                   for p in result["points"]], np.float64)


def reduced(result: dict, source_points: int) -> str:
  """'reduced: 8 of 100 points, 200 of 15,625 steps' ('' when the search is full size)."""
  parts = []
  if len(result["points"]) < source_points:
    parts.append(f"{len(result['points'])} of {source_points} points")
  full = result.get("model_num_steps")
  if full and result["num_steps"] < full:
    parts.append(f"{result['num_steps']:,} of {full:,} steps")
  return "reduced: " + ", ".join(parts) if parts else ""


def label(result: dict, source_points: int) -> str:
  """The search's name in a figure: its model, and 'reduced: …' when it is."""
  note = reduced(result, source_points)
  return f"{result['model']} ({note})" if note else result["model"]


def box_stats(values: np.ndarray) -> dict:
  """Quartiles, median, whiskers (furthest values within 1.5 IQR of the box) and outliers of
  the finite `values`."""
  v = np.sort(values[np.isfinite(values)])
  q1, median, q3 = np.percentile(v, [25, 50, 75])
  reach = 1.5 * (q3 - q1)
  inside = v[(v >= q1 - reach) & (v <= q3 + reach)]
  return {"q1": q1, "median": median, "q3": q3, "low": inside.min(), "high": inside.max(),
          "outliers": v[(v < q1 - reach) | (v > q3 + reach)]}


def budget(values: np.ndarray, orders: int = ORDERS) -> tuple[np.ndarray, ...]:
  """(median, 10 %, 90 %) over random orders of the best finite value among the first k points,
  k = 1 … P (NaN where no point of the first k has a score)."""
  rng = np.random.default_rng(0)
  filled = np.where(np.isfinite(values), values, np.inf)
  best = np.stack([np.minimum.accumulate(filled[rng.permutation(len(values))])
                   for _ in range(orders)])
  best = np.where(np.isfinite(best), best, np.nan)
  def percentile(q):
    return np.array([np.nanpercentile(c, q) if np.isfinite(c).any() else np.nan
                     for c in best.T])

  return percentile(50), percentile(10), percentile(90)


def _font(size: int):
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow < 10.1: the fixed bitmap font.
    return ImageFont.load_default()


def _ticks(lo: float, hi: float, count: int = 6) -> list[float]:
  """Round tick values covering [lo, hi]."""
  span = max(hi - lo, 1e-12)
  raw = span / count
  step = 10 ** math.floor(math.log10(raw))
  step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
  first = math.floor(lo / step) * step
  return [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]


class _Axes:
  """A plot area with linear x and y scales, ticks and titles."""

  def __init__(self, title: str, x_label: str, y_label: str, x_range, y_range, x_ticks=None):
    self.image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    self.draw = ImageDraw.Draw(self.image)
    self.font, self.small = _font(14), _font(12)
    self.x_range, self.y_ticks = x_range, _ticks(*y_range)
    self.y_range = (min(y_range[0], self.y_ticks[0]), max(y_range[1], self.y_ticks[-1]))
    box = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)
    self.draw.rectangle(box, outline="black")
    self.draw.text((WIDTH // 2, 18), title, fill="black", font=self.font, anchor="mm")
    self.draw.text((WIDTH // 2, HEIGHT - 14), x_label, fill="black", font=self.font, anchor="mm")
    self.draw.text((8, TOP - 22), y_label, fill="black", font=self.font)
    for y in self.y_ticks:
      py = self.py(y)
      self.draw.line((LEFT - 4, py, LEFT, py), fill="black")
      self.draw.line((LEFT + 1, py, WIDTH - RIGHT - 1, py), fill=(230, 230, 230))
      self.draw.text((LEFT - 6, py), f"{y:g}", fill="black", font=self.small, anchor="rm")
    for x, text in (x_ticks or []):
      px = self.px(x)
      self.draw.line((px, HEIGHT - BOTTOM, px, HEIGHT - BOTTOM + 4), fill="black")
      self.draw.text((px, HEIGHT - BOTTOM + 8), text, fill="black", font=self.small, anchor="mt")

  def px(self, x: float) -> float:
    lo, hi = self.x_range
    return LEFT + (x - lo) / max(hi - lo, 1e-12) * (WIDTH - RIGHT - LEFT)

  def py(self, y: float) -> float:
    lo, hi = self.y_range
    return HEIGHT - BOTTOM - (y - lo) / max(hi - lo, 1e-12) * (HEIGHT - BOTTOM - TOP)

  def save(self, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self.image.save(path, format="PNG")
    return path


def _score_name(results: list[dict]) -> str:
  names = {r.get("score", "") for r in results}
  return " / ".join(SCORE_NAMES.get(n, n) for n in sorted(names))


def _y_range(values: list[np.ndarray]) -> tuple[float, float]:
  finite = np.concatenate([v[np.isfinite(v)] for v in values])
  if not finite.size:
    raise UserError("no point of these searches has a score (every point failed): nothing to "
                    "draw")
  lo, hi = float(finite.min()), float(finite.max())
  pad = 0.05 * max(hi - lo, abs(hi) * 0.1, 1e-6)
  return max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad


def draw_box(results: list[dict], path: str, source_points: int = 100) -> str:
  """The score over each search's points, one box per search (module docstring)."""
  values = [scores(r) for r in results]
  ticks = [(i + 1, "") for i in range(len(results))]
  axes = _Axes(f"{_score_name(results)} over the points of each search", "search",
               _score_name(results) + " (lower is better)", (0.4, len(results) + 0.6),
               _y_range(values), ticks)
  half = min(60, 0.3 * (axes.px(2) - axes.px(1)))
  for i, (result, v) in enumerate(zip(results, values)):
    x, colour = axes.px(i + 1), COLOURS[i % len(COLOURS)]
    failed = int(np.sum(~np.isfinite(v)))
    text = f"{label(result, source_points)}\n{len(v)} points, {failed} failed"
    axes.draw.multiline_text((x, HEIGHT - BOTTOM + 8), text, fill="black", font=axes.small,
                             anchor="ma", align="center")
    if failed == len(v):
      continue
    s = box_stats(v)
    axes.draw.rectangle((x - half, axes.py(s["q3"]), x + half, axes.py(s["q1"])),
                        outline=colour, width=2)
    axes.draw.line((x - half, axes.py(s["median"]), x + half, axes.py(s["median"])),
                   fill=colour, width=3)
    for end, edge in ((s["high"], s["q3"]), (s["low"], s["q1"])):
      axes.draw.line((x, axes.py(edge), x, axes.py(end)), fill=colour, width=2)
      axes.draw.line((x - half / 2, axes.py(end), x + half / 2, axes.py(end)), fill=colour,
                     width=2)
    for y in s["outliers"]:
      axes.draw.ellipse((x - 3, axes.py(y) - 3, x + 3, axes.py(y) + 3), outline=colour)
  return axes.save(path)


def draw_budget(results: list[dict], path: str, source_points: int = 100) -> str:
  """Best score against the number of points tried (module docstring)."""
  curves = [budget(scores(r)) for r in results]
  longest = max(len(r["points"]) for r in results)
  x_ticks = [(k, str(int(k))) for k in _ticks(1, longest, 8) if 1 <= k <= longest and k == int(k)]
  axes = _Axes(f"best {_score_name(results)} against the budget", "points tried",
               "best " + _score_name(results), (1, max(longest, 2)),
               _y_range([c for curve in curves for c in curve]), x_ticks)
  for i, (result, (median, low, high)) in enumerate(zip(results, curves)):
    colour = COLOURS[i % len(COLOURS)]
    pale = tuple(int(c + 0.75 * (255 - c)) for c in colour)
    k = np.arange(1, len(median) + 1)
    ok = np.isfinite(median)
    band = ([(axes.px(a), axes.py(b)) for a, b in zip(k[ok], high[ok])]
            + [(axes.px(a), axes.py(b)) for a, b in zip(k[ok][::-1], low[ok][::-1])])
    if len(band) >= 3:
      axes.draw.polygon(band, fill=pale)
    line = [(axes.px(a), axes.py(b)) for a, b in zip(k[ok], median[ok])]
    if len(line) >= 2:
      axes.draw.line(line, fill=colour, width=3)
    elif line:
      axes.draw.ellipse((line[0][0] - 3, line[0][1] - 3, line[0][0] + 3, line[0][1] + 3),
                        fill=colour)
    axes.draw.text((WIDTH - RIGHT - 8, TOP + 10 + 18 * i), label(result, source_points),
                   fill=colour, font=axes.small, anchor="ra")
  return axes.save(path)


@exit_on_user_error
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("results", nargs="+", help="search.json files of genimg_jax.search")
  parser.add_argument("--out", default=os.path.join("docs", "images"), help="folder of the PNGs")
  parser.add_argument("--name", default="search", help="file name prefix of the PNGs")
  parser.add_argument("--source_points", type=int, default=100,
                      help="points of the source's search (Lucic et al.'s wide phase: 100)")
  args = parser.parse_args(argv)
  results = [read(path) for path in args.results]
  box = draw_box(results, os.path.join(args.out, f"{args.name}_fid_box.png"), args.source_points)
  curve = draw_budget(results, os.path.join(args.out, f"{args.name}_budget.png"),
                      args.source_points)
  print(f"wrote {box} and {curve}", flush=True)


if __name__ == "__main__":
  main()
