"""docs/RESULTS.md and results.json from the rows' records (runner.run_row)."""

import json
import math
import os

HEADER = """# Results

Written by `python -m genimg_jax.reproduce` (do not edit by hand): a row's seeds trained
together as one program (the runs axis, `num_runs` = the number of seeds; run r has seed
s + r) and each seed scored with the project's evaluate machinery.
Values are mean ± std over the seeds (std over 1 seed is 0). FID/KID/precision/recall are in
the feature space named in brackets: `clf` is the project's classifier of that data set
(numbers are comparable only within one data set and sample count, see
[evaluation.md](evaluation.md)), `inc` the standard Inception-v3 (the space papers report).
KID is ×10³. NLL and −ELBO are in nats per test image. Wall time: training and scoring of
every seed; samples/s: training images per second of the whole program (every seed's images
together), the first logged interval (compilation) left out.
"""

SHOWN = (  # (metric key, label, scale) in the order the table shows them.
    ("fid_inception", "FID [inc]", 1.0),
    ("fid_classifier", "FID [clf]", 1.0),
    ("kid_classifier", "KID×10³ [clf]", 1e3),
    ("precision_classifier", "precision [clf]", 1.0),
    ("recall_classifier", "recall [clf]", 1.0),
    ("test_neg_elbo", "−ELBO", 1.0),
    ("iwae_nll", "NLL", 1.0),
)


def _fmt(value: float, digits: int = 3) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "–"
  if abs(value) >= 100:
    return f"{value:.1f}"
  return f"{value:.{digits}g}"


def _ours(record: dict) -> str:
  summary = record["summary"]
  parts = []
  for key, label, scale in SHOWN:
    if key in summary:
      mean, std, _ = summary[key]
      parts.append(f"{label} {_fmt(mean * scale)} ± {_fmt(std * scale, 2)}"
                   + (f" (k={record['definition']['iwae_k']})" if key == "iwae_nll" else ""))
  return "<br>".join(parts)


def _reference(definition: dict) -> str:
  ref = definition.get("reference")
  if not ref:
    return "–"
  return f"{ref['metric']} {ref['value']}: {ref['source']}"


def _minutes(seconds: float) -> str:
  return f"{seconds / 60:.1f}"


def render(records: list[dict], skipped: list[dict]) -> str:
  """The Markdown page: the table of finished rows, then each row's details, then the rows
  skipped or failed in the last invocation."""
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
                 f"{', '.join(f'{s} ({n:,} samples)' for s, n in d['spaces'])}"
                 + (f"; IWAE k = {d['iwae_k']}, {d['nll_rounds']} round(s)" if d["iwae_k"]
                    else ""))
    if d.get("reference"):
      ref = d["reference"]
      lines.append(f"- reference: {ref['metric']} = {ref['value']} ({ref['source']})"
                   + (f"; {ref['note']}" if ref.get("note") else ""))
    for difference in d["differences"]:
      lines.append(f"- differs: {difference}")
    for note in r.get("notes", []):
      lines.append(f"- note: {note}")
    if r.get("resumed"):
      lines.append("- resumed from a checkpoint: the wall time counts the last session only")
    lines.append(f"- estimated beforehand: {d['estimate_minutes']:g} min"
                 + (f" ({d['estimate_basis']})" if d.get("estimate_basis") else ""))
    if r.get("image"):
      lines += ["", f"![{r['row']} samples](images/results/{os.path.basename(r['image'])})"]
  if skipped:
    lines += ["", "## Not run in the last invocation", ""]
    lines += [f"- {s['row']}: {s['status']}: {s['reason']}" for s in skipped]
  return "\n".join(lines) + "\n"


def write(records: list[dict], skipped: list[dict], docs_dir: str) -> tuple[str, str]:
  """Writes DOCS/RESULTS.md and DOCS/results.json; returns their paths."""
  os.makedirs(docs_dir, exist_ok=True)
  page = os.path.join(docs_dir, "RESULTS.md")
  data = os.path.join(docs_dir, "results.json")
  for path, text in ((page, render(records, skipped)),
                     (data, json.dumps({"rows": records, "not_run": skipped}, indent=1,
                                       sort_keys=True, default=float))):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.write(text)
    os.replace(tmp, path)
  return page, data
