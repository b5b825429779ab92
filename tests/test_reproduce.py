"""The results suite: rows are valid data, an unknown row/suite is one line listing the valid
ones, a row whose data set is not prepared is skipped with the command that prepares it (and
no file is written), and (slow) the tiny suite runs end to end into a table of other rows,
keeps them, writes README's block, and resumes after kill -9 with finished rows skipped."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from genimg_jax import config_cli
from genimg_jax.reproduce import rows as rows_lib
from genimg_jax.reproduce import runner, table
from genimg_jax.train import run_config
from tests.conftest import REPO_ROOT, run_python, subprocess_env
from tests.test_reproduce_table import HEADLINE, README, _record


@pytest.mark.parametrize("name", sorted(rows_lib.ROWS))
def test_every_row_builds_a_valid_config(name):
  row = rows_lib.ROWS[name]
  config = runner.row_config(row, row.seeds[0])
  run_config.validate(config)
  assert config.num_steps == row.steps and config.dataset == row.dataset
  assert row.estimate_minutes > 0 and row.model in config_cli.available_models()
  assert all(space in ("classifier", "inception") for space, _ in row.spaces)


def test_the_cpu_suite_fits_its_budget_and_names_are_unique():
  assert sum(r.estimate_minutes for r in rows_lib.SUITES["cpu"]) <= 150
  names = [r.name for suite in rows_lib.SUITES.values() for r in suite]
  assert len(names) == len(set(names)) and not set(names) & set(rows_lib.SUITES)


@pytest.mark.parametrize("spec", ["nope", "gan,nope", ","])
def test_an_unknown_row_or_suite_is_one_line_listing_the_valid_ones(spec):
  result = run_python(["-m", "genimg_jax.reproduce", "--suite", spec], timeout=120)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
  assert all(name in lines[0] for name in list(rows_lib.SUITES) + ["gan", "vae_pythae"])


def test_a_row_whose_data_set_is_not_prepared_is_skipped_with_the_prepare_command(tmp_path):
  empty = tmp_path / "tfds"
  empty.mkdir()
  result = run_python(["-m", "genimg_jax.reproduce", "--suite", "vae_pythae,lucic_ns_gan",
                       "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"),
                       "--data_dir", str(empty)], timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  skipped = [line for line in result.stderr.splitlines() if ": skipped: " in line]
  assert len(skipped) == 2 and "Traceback" not in result.stderr
  for line, name in zip(skipped, ("binarized_mnist", "mnist")):
    assert f"python -m genimg_jax.prepare {name} --from DIR --data_dir {empty}" in line
  assert "no row finished (2 not run)" in result.stdout
  assert not (tmp_path / "docs").exists()  # Nothing finished: no table written.


def _suite(tmp_path, *extra):
  return [sys.executable, "-m", "genimg_jax.reproduce", "--suite", "tiny", "--out",
          str(tmp_path / "runs"), "--docs", str(tmp_path / "docs"), "--cache_dir",
          str(tmp_path / "cache"), *extra]


def _checkpoint_steps(workdir):
  folder = os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(folder) if d.isdigit()) if os.path.isdir(folder) \
      else []


@pytest.mark.slow
def test_the_tiny_suite_runs_resumes_after_kill_9_and_skips_finished_rows(tmp_path):
  """Into a table of two other rows, killed with SIGKILL while training its second row (the
  first finished): the table is untouched; the rerun skips the first, resumes the second from
  its checkpoint, and adds both to the table, keeping the other rows and README's outside."""
  runs, docs = tmp_path / "runs", tmp_path / "docs"
  others = [_record("gan", runs, docs, (57.2, 3.8)),
            _record("vae_pythae", runs, docs, (130.0, 0.0), [[92.7, 92.8]])]
  table.write(others, str(docs), list(rows_lib.ROWS), HEADLINE, str(runs))
  (tmp_path / "README.md").write_text(README)
  prepared = {p: p.read_bytes() for p in (docs / "RESULTS.md", docs / "results.json")}
  before = json.loads((docs / "results.json").read_text())["rows"]
  vae_run = str(runs / "tiny_vae" / "seed_0" / "run")
  child = subprocess.Popen(_suite(tmp_path), cwd=REPO_ROOT, env=subprocess_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 900
  while not _checkpoint_steps(vae_run) and child.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  killed_at = (_checkpoint_steps(vae_run) or [0])[-1]
  child.send_signal(signal.SIGKILL)
  child.wait(timeout=60)
  assert (runs / "tiny_gan" / "done.json").is_file(), child.stderr.read()[-3000:]
  assert not (runs / "tiny_vae" / "done.json").is_file()
  assert killed_at > 0
  assert {p: p.read_bytes() for p in prepared} == prepared
  result = subprocess.run(_suite(tmp_path), cwd=REPO_ROOT, env=subprocess_env(),
                          capture_output=True, text=True, timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "tiny_gan: finished earlier, skipped" in result.stderr
  assert "tiny_gan: seed" not in result.stderr  # Not trained again.
  record = json.loads((runs / "tiny_vae" / "done.json").read_text())
  steps = rows_lib.ROWS["tiny_vae"].steps
  assert record["seeds"][0]["resumed_from_step"] == min(steps, killed_at)
  assert record["summary"]["iwae_nll"][0] > 0 and len(record["seeds"][0]["metrics"]
                                                     ["iwae_nll_rounds"]) == 2
  gan = json.loads((runs / "tiny_gan" / "done.json").read_text())
  assert [s["seed"] for s in gan["seeds"]] == [0, 1] and gan["summary"]["fid_classifier"][2] == 2
  # Both seeds trained as one program (the runs axis), each scored as its own run.
  assert {s["workdir"] for s in gan["seeds"]} == {str(runs / "tiny_gan" / "seeds_0-1" / "run")}
  assert [s["run"] for s in gan["seeds"]] == [0, 1] and gan["runs_in_program"] == 2
  fids = [s["metrics"]["fid_classifier"] for s in gan["seeds"]]
  assert fids[0] != fids[1]
  for seed in gan["seeds"]:  # Both checkpoints scored; the seed's numbers are the best one's.
    curve = seed["curve"]
    assert [c["step"] for c in curve] == [6, 12] and curve[0] != curve[1]
    best = min(curve, key=lambda c: c["fid_classifier"])
    assert seed["metrics"]["fid_classifier"] == best["fid_classifier"]
    assert seed["metrics"]["best_step"] == best["step"]
  page = (docs / "RESULTS.md").read_text()
  for name in ("tiny_gan", "tiny_vae"):
    assert f"[{name}](#{name})" in page and f"--suite {name}`" in page
    assert (docs / "images" / "results" / f"{name}.png").is_file()
    assert f"![{name} samples](images/results/{name}.png)" in page
  prepared_page = prepared[docs / "RESULTS.md"].decode().splitlines()
  for name in ("gan", "vae_pythae"):  # The other rows' lines, as they were.
    assert next(l for l in prepared_page if l.startswith(f"| [{name}](")) in page.splitlines()
  data = json.loads((docs / "results.json").read_text())
  assert [r["row"] for r in data["rows"]] == ["gan", "vae_pythae", "tiny_gan", "tiny_vae"]
  assert data["rows"][:2] == before
  assert {s["workdir"] for s in data["rows"][2]["seeds"]} == {"tiny_gan/seeds_0-1/run"}
  readme = (tmp_path / "README.md").read_text()
  assert readme.startswith(README[:README.index(table.START)])
  assert readme.endswith(README[README.index(table.END):])
  assert "hand-written" not in readme and "(docs/RESULTS.md#vae_pythae)" in readme
  written = {p: p.read_bytes() for p in (docs / "RESULTS.md", docs / "results.json")}
  again = subprocess.run(_suite(tmp_path), cwd=REPO_ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=300, check=False)
  assert again.returncode == 0 and again.stderr.count("finished earlier, skipped") == 2
  assert {p: p.read_bytes() for p in written} == written
