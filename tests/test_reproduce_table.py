"""The results table without training: a run merges the rows it finished into the existing
table and keeps every other row, a run that finishes nothing changes no file, results.json
holds relative paths (old absolute ones are read), a row's hash follows its resolved config,
and README's block between the markers is regenerated from the records."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from genimg_jax import config_cli
from genimg_jax.errors import UserError
from genimg_jax.reproduce import __main__ as cli
from genimg_jax.reproduce import rows as rows_lib
from genimg_jax.reproduce import records, runner, scoring, searches, table
from tests.conftest import REPO_ROOT

ORDER = list(rows_lib.ROWS)
HEADLINE = [r.name for r in rows_lib.ROWS.values() if r.headline or r.reference]
README = """# project

Intro words.

## Results
Some words above.

<!-- results:start -->
| row | data, steps × seeds | ours | published |
|---|---|---|---|
| `gan` | hand-written | FID 1 | – |
<!-- results:end -->

Words below, kept.
"""


def _record(name, out_dir, docs_dir, fid=(50.0, 2.0), nll_rounds=None, date="2026-01-01"):
  """A finished row's record as runner.run_row returns it (absolute paths), numbers given."""
  row = rows_lib.ROWS[name]
  workdir = os.path.join(str(out_dir), name, "seed_0", "run")
  seeds = [{"seed": s, "run": None, "workdir": workdir, "grid_dir": workdir,
            "metrics": {"fid_classifier": fid[0]}, "notes": [], "train_seconds": 1.0,
            "eval_seconds": 1.0, "resumed_from_step": 0, "samples_per_sec": 10.0}
           for s in row.seeds]
  summary = {"fid_classifier": [fid[0], fid[1], len(row.seeds)]}
  if nll_rounds:
    for seed, rounds in zip(seeds, nll_rounds):
      seed["metrics"].update(iwae_nll=float(np.mean(rounds)), iwae_nll_rounds=rounds)
    summary["iwae_nll"] = [90.0, 0.5, len(nll_rounds)]
  return {"row": name, "status": "done", "row_hash": "h", "definition": dataclasses.asdict(row),
          "seeds": seeds, "summary": summary,
          "image": os.path.join(str(docs_dir), "images", "results", f"{name}.png"),
          "wall_seconds": 60.0, "samples_per_sec": 10.0, "runs_in_program": 1,
          "resumed": False, "notes": [], "command": f"python -m genimg_jax.reproduce --suite "
          f"{name}", "device": "1× cpu", "date": date, "commit": "abc1234"}


@pytest.fixture
def table_dir(tmp_path):
  """tmp/docs with a table of three rows (gan, vae, vae_pythae) and tmp/README.md with the
  markers; returns (docs, out, readme)."""
  docs, out = tmp_path / "docs", tmp_path / "runs"
  readme = tmp_path / "README.md"
  readme.write_text(README)
  records = [_record("gan", out, docs, (57.2, 3.8)), _record("vae", out, docs, (114.0, 3.7)),
             _record("vae_pythae", out, docs, (130.0, 0.0), [[92.7, 92.8]])]
  table.write(records, str(docs), ORDER, HEADLINE, str(out), str(readme))
  return docs, out, readme


def _snapshot(docs, readme):
  return {p: p.read_bytes() for p in (docs / "RESULTS.md", docs / "results.json", readme)}


@pytest.fixture
def in_process(monkeypatch):
  """main() in this process without its stderr silencing (GENIMG_VERBOSE=1)."""
  monkeypatch.setenv("GENIMG_VERBOSE", "1")


def test_one_row_run_updates_that_row_and_keeps_the_others(table_dir, monkeypatch, in_process,
                                                           capsys):
  docs, out, readme = table_dir
  before = {r["row"]: r for r in json.loads((docs / "results.json").read_text())["rows"]}
  page_before = (docs / "RESULTS.md").read_text().splitlines()
  new = _record("tiny_gan", out, docs, (7.5, 0.25), date="2026-02-02")
  monkeypatch.setattr(runner, "run_row", lambda row, *a, **k: dict(new))
  cli.main(["--suite", "tiny_gan", "--out", str(out), "--docs", str(docs)])
  after = json.loads((docs / "results.json").read_text())["rows"]
  assert [r["row"] for r in after] == ["gan", "vae", "vae_pythae", "tiny_gan"]  # rows.py order.
  assert {r["row"]: r for r in after if r["row"] != "tiny_gan"} == before
  page = (docs / "RESULTS.md").read_text()
  for name in ("gan", "vae", "vae_pythae"):
    line = next(l for l in page_before if l.startswith(f"| [{name}](#{name})"))
    assert line in page.splitlines()
  assert "FID [clf] 7.5 ± 0.25" in page and "2026-02-02" in page
  assert "1 row(s) updated" in capsys.readouterr().out
  # A second run of the same row changes nothing.
  snapshot = _snapshot(docs, readme)
  cli.main(["--suite", "tiny_gan", "--out", str(out), "--docs", str(docs)])
  assert _snapshot(docs, readme) == snapshot


def _fail(row, *args, **kwargs):
  return {"row": row.name, "status": "failed", "reason": "NaN loss"}


def _raise(row, *args, **kwargs):
  raise RuntimeError("a bug in the row")


@pytest.mark.parametrize("how", ["out_not_writable", "row_fails", "row_raises", "not_prepared"])
def test_an_invocation_that_finishes_nothing_leaves_every_file_byte_identical(
    table_dir, monkeypatch, in_process, capsys, how):
  docs, out, readme = table_dir
  snapshot = _snapshot(docs, readme)
  out_arg = "/proc/nope" if how == "out_not_writable" else str(out)
  fake = {"row_fails": _fail, "row_raises": _raise,
          "not_prepared": lambda row, *a, **k: {"row": row.name, "status": "skipped",
                                                "reason": "prepare it"}}.get(how)
  if fake:
    monkeypatch.setattr(runner, "run_row", fake)
  argv = ["--suite", "tiny_gan,gan", "--out", out_arg, "--docs", str(docs)]
  if how == "row_raises":
    with pytest.raises(RuntimeError):
      cli.main(argv)
  elif how == "not_prepared":
    cli.main(argv)
    assert "left as they were" in capsys.readouterr().out
  else:
    with pytest.raises(SystemExit) as exit_info:
      cli.main(argv)
    assert exit_info.value.code == (2 if how == "out_not_writable" else 1)
  assert _snapshot(docs, readme) == snapshot
  assert not [f for f in os.listdir(docs) if f.endswith(".tmp")]
  if how == "out_not_writable":
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--out /proc/nope cannot be created" in lines[0]


def test_an_unreadable_table_stops_before_any_row_runs(table_dir, monkeypatch, in_process,
                                                       capsys):
  docs, out, _ = table_dir
  (docs / "results.json").write_text('{"rows": [')
  monkeypatch.setattr(runner, "run_row", _raise)
  with pytest.raises(SystemExit):
    cli.main(["--suite", "gan", "--out", str(out), "--docs", str(docs)])
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and "results.json cannot be read" in lines[0]


def test_paths_in_results_json_are_relative_and_old_absolute_ones_are_read(tmp_path):
  docs, out = tmp_path / "docs", tmp_path / "runs"
  table.write([_record("gan", out, docs)], str(docs), ORDER, HEADLINE, str(out))
  stored = json.loads((docs / "results.json").read_text())
  assert "--out" in stored["paths"]["workdir"]
  (record,) = stored["rows"]
  assert record["image"] == "images/results/gan.png"
  for seed in record["seeds"]:
    assert os.path.join(out, seed["workdir"]) == os.path.join(out, "gan", "seed_0", "run")
    assert not os.path.isabs(seed["grid_dir"])
  # An old file: absolute paths of another machine, another --out and docs folder.
  old = _record("vae", "/elsewhere/reproduce_runs", "/other/docs")
  (docs / "results.json").write_text(json.dumps({"rows": [old], "not_run": []}))
  (read,) = table.read(str(docs))
  assert read["image"] == "images/results/vae.png"
  assert {s["workdir"] for s in read["seeds"]} == {"vae/seed_0/run"}
  assert read["summary"] == old["summary"]
  # Merged with a new row, the old one is written relative too.
  table.write([_record("gan", out, docs)], str(docs), ORDER, HEADLINE, str(out))
  text = (docs / "results.json").read_text()
  assert "/elsewhere" not in text and "/other" not in text and str(tmp_path) not in text


def _changed_config(monkeypatch, key, value):
  real = config_cli.load_config

  def load(model, *args):
    config = real(model, *args)
    config[key] = value
    return config

  monkeypatch.setattr(config_cli, "load_config", load)


def test_the_row_hash_follows_the_resolved_config(monkeypatch):
  row = rows_lib.ROWS["tiny_gan"]
  digest = runner.row_hash(row)
  words = dataclasses.replace(row, differences=("other words",), estimate_minutes=9.0,
                              estimate_basis="guessed", headline=True)
  as_lists = dataclasses.replace(row, overrides={
      k: list(v) if isinstance(v, tuple) else v for k, v in row.overrides.items()})
  assert runner.row_hash(words) == runner.row_hash(as_lists) == digest
  assert runner.row_hash(dataclasses.replace(row, seeds=(0,))) != digest
  with monkeypatch.context() as m:
    _changed_config(m, "generator_hidden", (64, 64))  # The row overrides it: no change.
    assert runner.row_hash(row) == digest
  with monkeypatch.context() as m:
    _changed_config(m, "learning_rate", 0.123)  # configs/gan.py edited.
    assert runner.row_hash(row) != digest
  code = ("from genimg_jax.reproduce import rows, runner; "
          "print(runner.row_hash(rows.ROWS['tiny_gan']))")
  other = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
  assert other.stdout.strip() == digest


def test_a_finished_row_whose_config_changed_is_trained_again(tmp_path, monkeypatch):
  row = rows_lib.ROWS["beta_vae"]
  out = tmp_path / "runs"
  trained = []

  def train(row, row_dir, *args):
    trained.append(row_dir)
    return [{"seed": 0, "run": None, "workdir": row_dir, "grid_dir": row_dir,
             "train_seconds": 1.0, "resumed_from_step": 0, "samples_per_sec": 5.0}]

  monkeypatch.setattr(runner, "train_runs", train)
  monkeypatch.setattr(runner, "score_run", lambda row, run, *a: {
      **run, "metrics": {"fid_classifier": 1.0}, "notes": [], "eval_seconds": 1.0})
  monkeypatch.setattr(runner, "environment", lambda: {"device": "d", "date": "x", "commit": "c"})
  first = runner.run_row(row, str(out), str(tmp_path / "images"), log=lambda line: None)
  assert first["status"] == "done" and len(trained) == 1
  logs = []
  assert runner.run_row(row, str(out), str(tmp_path / "images"), log=logs.append) == first
  assert len(trained) == 1 and "finished earlier, skipped" in logs[0]
  _changed_config(monkeypatch, "learning_rate", 0.123)
  again = runner.run_row(row, str(out), str(tmp_path / "images"), log=logs.append)
  assert len(trained) == 2 and again["row_hash"] != first["row_hash"]
  stale = out / f"beta_vae.stale-{first['row_hash']}"
  assert json.loads((stale / "done.json").read_text()) == json.loads(json.dumps(first))
  assert any("changed since it ran" in line and "training it again" in line for line in logs)


def test_the_readme_block_is_regenerated_and_the_rest_is_untouched(table_dir):
  docs, _, readme = table_dir
  text = readme.read_text()
  start, end = text.index(table.START), text.index(table.END)
  assert text[:start] == README[:README.index(table.START)]
  assert text[end:] == README[README.index(table.END):]
  block = text[start:end].splitlines()[1:]
  assert block[0] == "| row | data, steps × seeds | ours | published |"
  rows = [line.split(" | ")[0] for line in block[2:]]
  assert rows == ["| [`gan`](docs/RESULTS.md#gan)", "| [`vae`](docs/RESULTS.md#vae)",
                  "| [`vae_pythae`](docs/RESULTS.md#vae_pythae)"]
  assert "FID [clf] 57.2 ± 3.8" in block[2] and "hand-written" not in text
  assert "89.78" in block[4]  # The published reference of vae_pythae.


def test_a_readme_without_markers_is_left_alone(tmp_path):
  readme = tmp_path / "README.md"
  readme.write_text("# project\n\nno block here\n")
  written = table.write([_record("gan", tmp_path / "runs", tmp_path / "docs")],
                        str(tmp_path / "docs"), ORDER, HEADLINE, "", str(readme))
  assert readme.read_text() == "# project\n\nno block here\n"
  assert "left alone" in written["readme"] and "\n" not in written["readme"]


def test_nll_rounds_show_their_spread_and_are_stored(tmp_path):
  docs = tmp_path / "docs"
  rounds = [[10.0, 12.0], [10.0, 14.0]]  # Std over the rounds 1 and 2: 1.5 on average.
  record = _record("vae", tmp_path / "runs", docs, nll_rounds=rounds)
  record["definition"]["seeds"] = [0, 1]
  record["seeds"] = record["seeds"][:2]
  table.write([record], str(docs), ORDER, HEADLINE)
  page = (docs / "RESULTS.md").read_text()
  assert "NLL 90.00 ± 0.50 (k=1000; 2 rounds, std over rounds 1.5)" in page
  stored = json.loads((docs / "results.json").read_text())["rows"][0]
  assert [s["metrics"]["iwae_nll_rounds"] for s in stored["seeds"]] == rounds


def test_records_of_rows_no_longer_defined_are_dropped(table_dir):
  docs, out, _ = table_dir
  data = json.loads((docs / "results.json").read_text())
  data["rows"].append({**data["rows"][0], "row": "retired_row"})
  (docs / "results.json").write_text(json.dumps(data))
  written = table.write([_record("gan", out, docs)], str(docs), ORDER, HEADLINE, str(out))
  assert written["dropped"] == ["retired_row"]
  assert [r["row"] for r in json.loads((docs / "results.json").read_text())["rows"]] == [
      "gan", "vae", "vae_pythae"]


def test_a_row_scored_at_several_checkpoints_reports_the_best_and_shows_its_curve(tmp_path):
  """The source's rule: every listed checkpoint scored, the lowest Inception FID reported
  (classifier FID when there is no Inception score), ties to the earlier; the page lists each
  seed's curve."""
  curve = [{"step": 6, "fid_inception": 30.0, "fid_classifier": 9.0},
           {"step": 12, "fid_inception": 20.0, "fid_classifier": 11.0},
           {"step": 18, "fid_inception": 20.0, "fid_classifier": 10.0}]
  assert scoring.best_of_steps(curve)["step"] == 12  # Inception decides; the tie: earlier.
  no_inception = [{k: v for k, v in c.items() if k != "fid_inception"} for c in curve]
  assert scoring.best_of_steps(no_inception)["step"] == 6
  record = _record("gan", tmp_path / "runs", tmp_path / "docs")
  record["seeds"][0]["curve"] = curve
  page = table.render([record])
  assert ("- checkpoints scored (seed 0; the row shows the best): step 6: FID [inc] 30, "
          "FID [clf] 9; step 12: FID [inc] 20, FID [clf] 11; step 18: FID [inc] 20, "
          "FID [clf] 10") in page


def test_a_checkpoint_is_scored_once_per_row_hash(tmp_path, monkeypatch):
  """step_scores keeps each checkpoint's scores with the row's hash: the same row reads them
  back, a changed row (another hash) or newly given Inception weights score again."""
  calls = []

  def fake_scores(row, run, step, cache_dir, weights):
    calls.append((step, bool(weights)))
    used = {s: "clean" for s, _ in row.spaces if s != "inception" or weights}
    return {"fid_classifier": float(step)}, [], used

  monkeypatch.setattr(scoring, "_space_scores", fake_scores)
  row = dataclasses.replace(rows_lib.ROWS["lucic_ns_gan"])
  run = {"seed": 0, "run": None, "workdir": str(tmp_path / "row" / "seed_0" / "run")}
  first = scoring.step_scores(row, run, 6, "", "", "h1")
  again = scoring.step_scores(row, run, 6, "", "", "h1")
  assert first["metrics"] == again["metrics"] == {"fid_classifier": 6.0}
  assert (first["kept"], again["kept"]) == (False, True)
  assert again["seconds"] == first["seconds"] >= 0  # The first scoring's time, read back.
  assert calls == [(6, False)]
  scoring.step_scores(row, run, 6, "", "", "h2")  # Another row: scored again.
  scoring.step_scores(row, run, 6, "", "weights.whl", "h2")  # Inception now wanted.
  scoring.step_scores(row, run, 6, "", "weights.whl", "h2")
  assert calls == [(6, False), (6, False), (6, True)]
  assert os.path.isfile(scoring.step_score_path(run, 6))


def test_the_page_shows_each_recorded_search_with_its_two_figures(tmp_path):
  """docs/search/NAME.json → RESULTS.md's search section: the figures drawn by reproduce under
  docs/images/search/, the best point, point 0, failed points, and 'reduced' for a search
  smaller than the source's 100 points."""
  docs = tmp_path / "docs"
  (docs / "search").mkdir(parents=True)
  record = json.loads((pathlib.Path(REPO_ROOT) / "docs" / "search" /
                       "lucic_ns_gan_reduced.json").read_text())
  record["points"][1]["failed"], record["points"][1]["score"] = True, None
  (docs / "search" / "tiny.json").write_text(json.dumps(record))
  text = searches.section(str(docs))
  for figure in ("tiny_fid_box.png", "tiny_budget.png"):
    assert (docs / "images" / "search" / figure).stat().st_size > 1000
    assert f"(images/search/{figure})" in text
  scores = [p["score"] for p in record["points"] if not p["failed"]]
  assert f"{min(scores):.1f}; point 0 {record['points'][0]['score']:.1f}" in text
  assert "failed (diverged) points: 1" in text and "**reduced: 10 of 100 points" in text
  assert searches.section(str(tmp_path / "nothing")) == ""


def test_the_wall_time_counts_training_and_scoring_done_by_earlier_sessions(tmp_path,
                                                                             monkeypatch):
  """A row trained and scored by earlier processes: the training time is summed from the run's
  logged intervals (steps / steps_per_sec, a many-runs interval once), and kept checkpoint
  scores add the time they recorded; one that recorded none is named in a note."""
  workdir = tmp_path / "row" / "seed_0" / "run"
  workdir.mkdir(parents=True)
  lines = [{"step": 10, "steps_per_sec": 2.0}, {"step": 10, "steps_per_sec": 2.0, "run": 1},
           {"step": 30, "steps_per_sec": 4.0}, {"step": 30, "eval": 1.0}]
  (workdir / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
  assert runner.logged_training_seconds(str(workdir)) == 10 / 2.0 + 20 / 4.0

  monkeypatch.setattr(scoring, "_space_scores", lambda *a: ({"fid_classifier": 1.0}, [],
                                                           {"classifier": "clean"}))
  row = dataclasses.replace(rows_lib.ROWS["lucic_ns_gan"], score_steps=(3, 6),
                            spaces=(("classifier", 10),))
  run = {"seed": 0, "run": None, "workdir": str(workdir)}
  records.write_json(scoring.step_score_path(run, 3), {
      "row_hash": "h", "metrics": {"fid_classifier": 2.0}, "notes": [],
      "protocols": {"classifier": "clean"}, "seconds": 600.0})
  records.write_json(scoring.step_score_path(run, 6), {
      "row_hash": "h", "metrics": {"fid_classifier": 3.0}, "notes": [],
      "protocols": {"classifier": "clean"}})  # Written before scores recorded their time.
  scored = scoring.score_run(row, run, "", "", "h")
  assert 600.0 <= scored["eval_seconds"] < 660.0
  assert scored["metrics"]["best_step"] == 3
  assert any("steps [6]" in note for note in scored["notes"])


def test_rows_defined_but_not_run_are_listed_with_their_estimates(tmp_path):
  """Every row of a results suite without a record is listed once, with its suite, published
  number and estimate; a recorded row and the tests' tiny rows are not."""
  docs = tmp_path / "docs"
  table.write([_record("gan", tmp_path / "runs", docs)], str(docs), ORDER, HEADLINE,
              defined=rows_lib.defined())
  page = (docs / "RESULTS.md").read_text()
  listed = page.split("## Rows defined but not run", 1)[1]
  names = [r.name for s, rows in rows_lib.SUITES.items() if s != "tiny" for r in rows]
  for name in names:
    assert listed.count(f"| `{name}` |") == (name != "gan"), name
  assert "tiny_gan" not in listed
  assert "| `vamp_pythae` | long | Larochelle's binarised MNIST, 1,000,000 × 3 | NLL 85.79" in listed
  assert f"{rows_lib.ROWS['vamp_pythae'].estimate_minutes / 60:.1f} h: " in listed
