"""docs/RESULTS.md, results.json and README.md's headline block from the rows' records.

A run merges the records of the rows it finished into results.json (keyed by row name; every
other row's record is kept as it was, rows no longer defined are dropped) and regenerates the
page and the README block from the merged records; a run that finished nothing writes nothing.
"""

import json
import math
import os
import re

import numpy as np

from genimg_jax.errors import UserError

HEADER = """# Results

Written by `python -m genimg_jax.reproduce` (do not edit by hand): a row's seeds trained
together as one program (the runs axis, `num_runs` = the number of seeds; run r has seed
s + r) and each seed scored with the project's evaluate machinery. A run rewrites the rows it
finished and keeps every other row as it was (each row's device, date and commit are its own);
rows follow the order of `genimg_jax/reproduce/rows.py`, and a row no longer defined there is
dropped. The headline rows of README.md's Results section are written from the same records.
Values are mean ± std over the seeds (std over 1 seed is 0); an NLL of several rounds adds the
std over its rounds (averaged over the seeds). FID/KID/precision/recall are in
the feature space named in brackets: `clf` is the project's classifier of that data set
(numbers are comparable only within one data set and sample count, see
[evaluation.md](evaluation.md)), `inc` the standard Inception-v3 (the space papers report).
KID is ×10³. NLL and −ELBO are in nats per test image. Wall time: training and scoring of
every seed; samples/s: training images per second of the whole program (every seed's images
together), the first logged interval (compilation) left out. In results.json a seed's
`workdir` and `grid_dir` are relative to the `--out` folder of the run that wrote the row,
`image` to this folder. The rows defined in rows.py that have not run are listed after the
table, each with its estimate.
"""

PATHS = {"workdir": "relative to the --out folder of the run that wrote the row",
         "grid_dir": "relative to the --out folder of the run that wrote the row",
         "image": "relative to the folder of this file"}
START, END = "<!-- results:start -->", "<!-- results:end -->"

SHOWN = (  # (metric key, label, scale) in the order the table shows them.
    ("fid_inception", "FID [inc]", 1.0),
    ("fid_classifier", "FID [clf]", 1.0),
    ("kid_classifier", "KID×10³ [clf]", 1e3),
    ("precision_classifier", "precision [clf]", 1.0),
    ("recall_classifier", "recall [clf]", 1.0),
    ("test_neg_elbo", "−ELBO", 1.0),
    ("iwae_nll", "NLL", 1.0),
    ("iwae_nll_last_model", "NLL of the last model", 1.0),
    ("selected_step", "selected step", 1.0),
    ("best_step", "best checkpoint's step", 1.0),
)
LABELS = {key: (label, scale) for key, label, scale in SHOWN}
NATS = ("test_neg_elbo", "iwae_nll", "iwae_nll_last_model")  # Shown with two decimals.
HEADLINE_METRICS = ("iwae_nll", "test_neg_elbo", "fid_inception", "fid_classifier")
DATA_WORDS = {"mnist_embedded": "embedded digits", "mnist": "MNIST",
              "fashion_mnist": "Fashion-MNIST", "binarized_mnist": "Larochelle's binarised MNIST"}


def _fmt(value: float, digits: int = 3) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "–"
  if abs(value) >= 100:
    return f"{value:.1f}"
  return f"{value:.{digits}g}"


def _round_spread(record: dict) -> tuple[int, float] | None:
  """(rounds, std over the NLL rounds averaged over the seeds) when a seed has several."""
  rounds = [s["metrics"].get("iwae_nll_rounds") or [] for s in record["seeds"]]
  if max(map(len, rounds), default=0) < 2:
    return None
  return max(map(len, rounds)), float(np.mean([np.std(r) for r in rounds if r]))


def _metric(record: dict, key: str, always_std: bool = True) -> str:
  """'LABEL mean ± std' of summary[key], with the NLL's k and round spread."""
  label, scale = LABELS[key]
  mean, std, n = record["summary"][key]
  nats = key in NATS  # Likelihoods: two decimals, the precision their comparisons need.
  text = f"{label} {f'{mean:.2f}' if nats else _fmt(mean * scale)}"
  if always_std or n > 1:
    text += f" ± {f'{std:.2f}' if nats else _fmt(std * scale, 2)}"
  if key == "iwae_nll":
    spread = _round_spread(record)
    text += f" (k={record['definition']['iwae_k']}" + (
        f"; {spread[0]} rounds, std over rounds {_fmt(spread[1], 2)})" if spread else ")")
  return text


def _ours(record: dict) -> str:
  return "<br>".join(_metric(record, key) for key, _, _ in SHOWN if key in record["summary"])


def _reference(definition: dict) -> str:
  ref = definition.get("reference")
  if not ref:
    return "–"
  judge = f"<br>the source's own code run here: {ref['judge']}" if ref.get("judge") else ""
  return f"{ref['metric']} {ref['value']}: {ref['source']}{judge}"


def _minutes(seconds: float) -> str:
  return f"{seconds / 60:.1f}"


def _spaces(d: dict) -> str:
  """'classifier (10,000 samples), inception (10,000 samples, lucic FID protocol)': each space
  with its sample count, and the row's FID protocol where it is not clean-fid's."""
  protocol = d.get("protocol", "clean")  # Records written before rows had one: clean.

  def words(space: str, n: int) -> str:
    named = space == "inception" and protocol != "clean"
    return f"{space} ({n:,} samples{f', {protocol} FID protocol' if named else ''})"

  return ", ".join(words(s, n) for s, n in d["spaces"]) or "none"


def _curves(record: dict) -> list[str]:
  """'- checkpoints scored (seed 0): step 3,906: FID [inc] 31.2, FID [clf] 20.1; …': each
  seed's score-versus-step curve when the row scored several checkpoints (the best is the
  row's number)."""
  lines = []
  for seed in record["seeds"]:
    if seed.get("curve"):
      points = [f"step {c['step']:,}: " + ", ".join(
          f"{LABELS[k][0]} {_fmt(c[k] * LABELS[k][1])}" for k in ("fid_inception",
                                                                 "fid_classifier") if k in c)
                for c in seed["curve"]]
      lines.append(f"- checkpoints scored (seed {seed['seed']}; the row shows the best): "
                   + "; ".join(points))
  return lines


def render(records: list[dict]) -> str:
  """The Markdown page: the table of finished rows, then each row's details."""
  lines = [HEADER, ("| row | model | data | steps × seeds | ours | reference | wall (min) | "
                    "samples/s | device | date | commit |"),
           "|---|---|---|--:|---|---|--:|--:|---|---|---|"]
  for r in records:
    d = r["definition"]
    lines.append(f"| [{r['row']}](#{r['row']}) | `{d['model']}` | {d['dataset']} | "
                 f"{d['steps']:,} × {len(d['seeds'])} | {_ours(r)} | {_reference(d)} | "
                 f"{_minutes(r['wall_seconds'])} | {_fmt(r['samples_per_sec'], 4)} | "
                 f"{r['device']} | {r['date']} | `{r['commit']}` |")
  for r in records:
    d = r["definition"]
    lines += ["", f"### {r['row']}", "", f"`{r['command']}`", ""]
    overrides = ", ".join(f"{k}={v!r}" for k, v in sorted(d["overrides"].items()))
    lines.append(f"- config `configs/{d['model']}.py`" + (f" with {overrides}" if overrides
                                                            else "") +
                 f"; seeds {', '.join(map(str, d['seeds']))}; feature spaces "
                 f"{_spaces(d)}"
                 + (f"; IWAE k = {d['iwae_k']}, {d['nll_rounds']} round(s)" if d["iwae_k"]
                    else ""))
    if d.get("reference"):
      ref = d["reference"]
      lines.append(f"- reference: {ref['metric']} = {ref['value']} ({ref['source']})"
                   + (f"; {ref['note']}" if ref.get("note") else ""))
      if ref.get("judge"):
        lines.append(f"- the source's own code, run here: {ref['judge']}")
    for difference in d["differences"]:
      lines.append(f"- differs: {difference}")
    for note in r.get("notes", []):
      lines.append(f"- note: {note}")
    lines += _curves(r)
    if r.get("resumed"):
      lines.append("- resumed from a checkpoint: the training time is summed over its logged "
                   "intervals, whichever session trained them")
    lines.append(f"- estimated beforehand: {d['estimate_minutes']:g} min"
                 + (f" ({d['estimate_basis']})" if d.get("estimate_basis") else ""))
    if r.get("image"):
      lines += ["", f"![{r['row']} samples]({r['image']})"]
  return "\n".join(lines) + "\n"


def render_headline(records: list[dict], headline, page_link: str) -> str:
  """README's block: the `headline` rows (row | data, steps × seeds | ours | published)."""
  lines = ["| row | data, steps × seeds | ours | published |", "|---|---|---|---|"]
  for r in (r for r in records if r["row"] in headline):
    d, ref = r["definition"], r["definition"].get("reference")
    keys = ([ref["metric"]] if ref else []) + list(HEADLINE_METRICS)
    keys = [k for k in dict.fromkeys(keys) if k in r["summary"] and k in LABELS][:2]
    published = "–"
    if ref:
      label = LABELS.get(ref["metric"], (ref["metric"],))[0]
      published = f"{label} {ref['value']} ({ref['source'].split(' (')[0].split(',')[0]})"
      if ref.get("judge"):
        published += f"; its own code here: {ref['judge'].split(' (')[0]}"
    lines.append(f"| [`{r['row']}`]({page_link}#{r['row']}) | "
                 f"{DATA_WORDS.get(d['dataset'], d['dataset'])}, {d['steps']:,} × "
                 f"{len(d['seeds'])} | {'; '.join(_metric(r, k, False) for k in keys)} | "
                 f"{published} |")
  return "\n".join(lines) + "\n"


def render_not_run(defined: list[dict], recorded) -> str:
  """RESULTS.md's list of the rows defined in rows.py (`defined`: their fields and "suite")
  that have no record in `recorded` (names): each with its reference and the estimate that
  says why it has not run on the machines that wrote the page."""
  rows = [d for d in defined if d["name"] not in set(recorded)]
  if not rows:
    return ""
  lines = ["", "## Rows defined but not run", "",
           "Each runs alone with `python -m genimg_jax.reproduce --suite ROW`; the estimate is "
           "the whole row (every seed, training and scoring) on its suite's device.", "",
           "| row | suite | data, steps × seeds | published | estimated |",
           "|---|---|---|---|---|"]
  for d in rows:
    ref = d.get("reference")
    published = (f"{LABELS.get(ref['metric'], (ref['metric'],))[0]} {ref['value']} "
                 f"({ref['source'].split(' (')[0].split(',')[0]})" if ref else "–")
    hours = d["estimate_minutes"] / 60
    when = f"{hours:.1f} h" if hours >= 1 else f"{d['estimate_minutes']:g} min"
    lines.append(f"| `{d['name']}` | {d['suite']} | {DATA_WORDS.get(d['dataset'], d['dataset'])}"
                 f", {d['steps']:,} × {len(d['seeds'])} | {published} | {when}"
                 + (f": {d['estimate_basis']}" if d.get("estimate_basis") else "") + " |")
  return "\n".join(lines) + "\n"


def _runs_relative(path: str, row: str, out_dir: str = "") -> str:
  """A seed's run path relative to the --out folder (ROW/seed_S/run…): from `out_dir` when the
  path lies under it, else from the path's own ROW/seed… parts (records of absolute paths)."""
  if not path:
    return path
  if out_dir:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))
    if rel.split(os.sep)[0] != os.pardir:
      return rel.replace(os.sep, "/")
  parts = path.replace(os.sep, "/").split("/")
  for i in range(len(parts) - 2, -1, -1):
    if parts[i] == row and re.fullmatch(r"seeds?_\d+(-\d+)?", parts[i + 1]):
      return "/".join(parts[i:])
  return path


def _docs_relative(image: str, docs_dir: str) -> str:
  """An image path relative to the docs folder (absolute ones elsewhere: images/results/NAME)."""
  if not image or not os.path.isabs(image):
    return image
  rel = os.path.relpath(image, os.path.abspath(docs_dir))
  if rel.split(os.sep)[0] == os.pardir:
    return f"images/results/{os.path.basename(image)}"
  return rel.replace(os.sep, "/")


def relative(record: dict, docs_dir: str, out_dir: str = "") -> dict:
  """`record` with its paths as results.json holds them (see PATHS); a new dict."""
  seeds = [{**s, **{k: _runs_relative(s[k], record["row"], out_dir)
                    for k in ("workdir", "grid_dir") if k in s}} for s in record["seeds"]]
  return {**record, "seeds": seeds, "image": _docs_relative(record.get("image", ""), docs_dir)}


def read(docs_dir: str) -> list[dict]:
  """The records of DOCS/results.json (none when it does not exist), paths made relative."""
  path = os.path.join(docs_dir, "results.json")
  if not os.path.exists(path):
    return []
  try:
    with open(path, encoding="utf-8") as f:
      rows = json.load(f)["rows"]
    return [relative(r, docs_dir) for r in rows]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UserError(f"{path} cannot be read as a results table ({type(e).__name__}: {e}): "
                    f"restore it (git checkout) or move it away to start a new one") from None


def merge(old: list[dict], new: list[dict], order) -> tuple[list[dict], list[str]]:
  """`new` records replace `old` ones of the same row; the rows of `order` (canonical names)
  in that order, and the names of old records dropped for not being in it."""
  by_name = {r["row"]: r for r in old}
  by_name.update({r["row"]: r for r in new})
  order = list(order)
  return ([by_name[n] for n in order if n in by_name],
          [n for n in by_name if n not in order])


def replace_block(text: str, block: str) -> str | None:
  """`text` with what lies between START and END replaced by `block`; None without them."""
  start = text.find(START)
  end = text.find(END, start + len(START)) if start >= 0 else -1
  if end < 0:
    return None
  return text[:start + len(START)] + "\n" + block + text[end:]


def write(records: list[dict], docs_dir: str, order, headline=(), out_dir: str = "",
          readme: str = "", extra: str = "", defined=()) -> dict:
  """Merges `records` (rows finished now, runner paths) into DOCS/results.json and rewrites
  it, DOCS/RESULTS.md (+ the rows of `defined` not run yet, `render_not_run`, + `extra`,
  Markdown after the rows) and `readme`'s block atomically (temp file + rename; nothing when
  `records` is empty). Returns {"page", "data", "readme": path or why it was left alone,
  "dropped": names}."""
  if not records:
    return {}
  new = [relative(r, docs_dir, out_dir) for r in records]
  merged, dropped = merge(read(docs_dir), new, order)
  page = os.path.join(docs_dir, "RESULTS.md")
  data = os.path.join(docs_dir, "results.json")
  texts = {page: (render(merged) + render_not_run(list(defined), [r["row"] for r in merged])
                  + extra),  # extra: e.g. the random-search section.
           data: json.dumps({"paths": PATHS, "rows": merged}, indent=1, sort_keys=True,
                            default=float) + "\n"}
  readme_note = f"{readme}: headline rows written"
  if not readme or not os.path.isfile(readme):
    readme_note = f"{readme or 'README.md'} not found: no headline rows written"
  else:
    with open(readme, encoding="utf-8") as f:
      text = f.read()
    link = os.path.relpath(page, os.path.dirname(os.path.abspath(readme))).replace(os.sep, "/")
    new_text = replace_block(text, render_headline(merged, set(headline), link))
    if new_text is None:
      readme_note = f"{readme} has no {START} … {END} block: left alone"
    else:
      texts[readme] = new_text
  os.makedirs(docs_dir, exist_ok=True)
  for path, text in texts.items():  # Every file whole before any is replaced.
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      f.write(text)
  for path in texts:
    os.replace(path + ".tmp", path)
  return {"page": page, "data": data, "readme": readme_note, "dropped": dropped}
