"""RESULTS.md's random-search section: every search record in docs/search/ (a `search.json`
that `python -m genimg_jax.search` wrote, copied there under the search's name), its two
figures redrawn by `reproduce` (search_plots.py: FID over the points as a box plot, Lucic et
al.'s Figure 3 style; the best FID against the points tried, their budget curve) and a short
account: ranges, size (labelled reduced against the source's 100 points), best point, failed
points, time."""

import glob
import os

import numpy as np

from genimg_jax.reproduce import search_plots

SOURCE_POINTS = 100  # Lucic et al.'s wide phase: 100 points per GAN and data set.
FOLDER = "search"  # docs/search/NAME.json → docs/images/search/NAME_{fid_box,budget}.png.


def _values(values: dict) -> str:
  return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in values.items())


def describe(name: str, result: dict, box: str, budget: str) -> list[str]:
  """The Markdown lines of one search (image paths relative to docs/)."""
  values = search_plots.scores(result)
  live = np.flatnonzero(np.isfinite(values))
  note = search_plots.reduced(result, SOURCE_POINTS)
  lines = ["", f"### {name}", "",
           f"- `{result['model']}`, search `{result['search']}`, {len(values)} points "
           f"(seed {result['search_seed']}; point 0 is the config's own values), "
           f"{result['num_steps']:,} steps, {result['num_runs']} seed(s) per point"
           + (f"; **{note}**" if note else ""),
           f"- per-run values (one program per group): {', '.join(result['per_run_keys'])}; "
           f"program-changing: {', '.join(result['program_keys']) or 'none'} "
           f"({len(result['groups'])} programs)"]
  if live.size:
    best = result["points"][int(live[np.argmin(values[live])])]
    lines.append(f"- best: point {best['point']} ({_values(best['values'])}), "
                 f"{result['score']} {best['score']:.1f}; point 0 {values[0]:.1f}; median "
                 f"{np.median(values[live]):.1f}")
  lines.append(f"- failed (diverged) points: {len(values) - live.size}; "
               f"{result['seconds'] / 60:.0f} min on {result.get('device', 'the machine it ran on')}, "
               f"{result['date']}, commit `{result['commit']}`")
  lines += ["", f"| ![{name} box plot]({box}) | ![{name} budget curve]({budget}) |",
            "|---|---|"]
  return lines


def section(docs_dir: str) -> str:
  """The section for every docs/search/*.json (figures redrawn under docs/images/search/);
  '' when there is none."""
  paths = sorted(glob.glob(os.path.join(docs_dir, FOLDER, "*.json")))
  if not paths:
    return ""
  lines = ["", "## Random searches", "",
           "Each search's points are trained as runs-axis programs, one per group of "
           "program-changing values ([runs.md](runs.md)); a failed point counts as failed, "
           "not as a crash. Records: `docs/search/`."]
  images = os.path.join(docs_dir, "images", FOLDER)
  for path in paths:
    name = os.path.splitext(os.path.basename(path))[0]
    result = search_plots.read(path)
    box = search_plots.draw_box([result], os.path.join(images, f"{name}_fid_box.png"),
                                SOURCE_POINTS)
    budget = search_plots.draw_budget([result], os.path.join(images, f"{name}_budget.png"),
                                      SOURCE_POINTS)
    rel = lambda p: os.path.relpath(p, docs_dir).replace(os.sep, "/")
    lines += describe(name, result, rel(box), rel(budget))
  return "\n".join(lines) + "\n"
