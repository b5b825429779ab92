"""Several runs in one program through `python train.py`, `evaluate` and `generate`: the run
folder's per-run outputs, kill -9 and resume with a frozen run (bit for bit), per-run scores
with mean ± std, `generate --run r` = the single run's samples, and one-line errors."""

import json
import os
import signal

import numpy as np
import pytest

from genimg_jax.errors import UserError
from tests.conftest import make_tiny_gan_config, make_tiny_vae_config
from tests.reliability_support import (  # Fixture env: conftest.
    QUIET, TINY_VAE, Child, assert_bit_identical, assert_one_line_error, checkpoint_steps,
    state_leaves, train)

pytestmark = pytest.mark.slow
CHEAP_EVAL = dict(eval_classifier_epochs=0.02)  # The feature classifier, barely trained.

# Run 1's absurd step size makes it non-finite within a few steps; runs 0 and 2 go on.
SWEEP = ["--config.sweep=learning_rate=1e-3,1e30,2e-3"]
RUN = TINY_VAE + QUIET + SWEEP + ["--config.num_steps=200", "--config.checkpoint_every=20",
                                  "--config.log_every=10", "--config.steps_per_dispatch=5",
                                  "--config.keep_checkpoints=100"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
  workdir = str(tmp_path_factory.mktemp("runs_reference"))
  result = train(RUN + ["--workdir", workdir], env)
  assert result.returncode == 0, result.describe()
  return workdir, result


def test_a_frozen_run_is_reported_and_the_others_finish(reference):
  workdir, result = reference
  frozen = [line for line in result.stdout.splitlines() if "became non-finite" in line]
  assert len(frozen) == 1 and frozen[0].startswith("run 1 (seed 0, learning_rate=1e+30)")
  assert "frozen runs: run 1" in result.stdout
  assert "NaN or Inf" not in result.stderr  # The frozen run's NaNs stay out of TensorBoard.
  leaves, step = state_leaves(workdir)
  assert step == 200
  values = dict(leaves)
  assert list(values[".alive"]) == [True, False, True]
  assert all(np.all(np.isfinite(v)) for v in values.values() if v.dtype.kind == "f")
  lines = [json.loads(x) for x in open(os.path.join(workdir, "metrics.jsonl"))]
  assert {(r["run"], r["learning_rate"]) for r in lines if "run" in r} == {
      (0, 1e-3), (1, 1e30), (2, 2e-3)}
  for r in range(3):
    folder = os.path.join(workdir, f"run_{r}")
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(folder))
    assert os.path.exists(os.path.join(folder, "samples_200.png"))


def test_kill_9_and_resume_with_a_frozen_run_is_bit_identical(reference, env, tmp_path):
  ref_dir, _ = reference
  workdir = str(tmp_path / "killed")
  child = Child(RUN + ["--workdir", workdir], env)
  child.wait_for(lambda: any(s >= 60 for s in checkpoint_steps(workdir)), interval=0.005)
  child.proc.send_signal(signal.SIGKILL)
  child.finish()
  assert checkpoint_steps(workdir) and max(checkpoint_steps(workdir)) < 200
  result = train(RUN + ["--workdir", workdir], env)
  assert result.returncode == 0, result.describe()
  assert_bit_identical(state_leaves(workdir)[0], state_leaves(ref_dir)[0], "after kill -9")


def test_resume_with_another_num_runs_is_one_line(reference, env, tmp_path):
  import shutil

  workdir = str(tmp_path / "copy")
  shutil.copytree(reference[0], workdir)
  result = train(RUN + ["--config.num_runs=2", "--workdir", workdir], env)
  assert result.returncode != 0
  assert "num_runs=2 here but 1 in the checkpoint" in assert_one_line_error(result)


def test_every_run_frozen_stops_with_exit_3(env, tmp_path):
  result = train(TINY_VAE + QUIET + ["--config.sweep=learning_rate=1e30,1e31",
                                     "--config.num_steps=40", "--workdir", str(tmp_path)], env)
  assert result.returncode == 3, result.describe()
  assert "every run" in assert_one_line_error(result)


@pytest.fixture(scope="module")
def three_gans(tmp_path_factory):
  """num_runs = 3 (seeds 4, 5, 6) and the single run of seed 6, trained in-process."""
  from genimg_jax.train.loop import train_and_evaluate

  many = str(tmp_path_factory.mktemp("three"))
  train_and_evaluate(make_tiny_gan_config(num_runs=3, seed=4, **CHEAP_EVAL), many)
  single = str(tmp_path_factory.mktemp("seed6"))
  train_and_evaluate(make_tiny_gan_config(seed=6, **CHEAP_EVAL), single)
  return many, single


def test_generate_run_2_equals_the_single_run_of_its_seed(three_gans, tmp_path):
  from genimg_jax import generate

  many, single = three_gans
  generate.main(["--workdir", many, "--num", "20", "--out", str(tmp_path / "r2.npy"),
                 "--run", "2"])
  generate.main(["--workdir", single, "--num", "20", "--out", str(tmp_path / "s6.npy")])
  a, b = np.load(tmp_path / "r2.npy"), np.load(tmp_path / "s6.npy")
  assert a.shape == (20, 28, 28, 1)
  np.testing.assert_allclose(a, b, atol=1e-4)  # The parameters agree to ~1e-6 (test_runs.py).
  generate.main(["--workdir", many, "--num", "20", "--out", str(tmp_path / "r0.npy"),
                 "--run", "0"])
  assert np.abs(np.load(tmp_path / "r0.npy") - a).max() > 0.05  # Another seed, other images.


@pytest.mark.parametrize("run, message", [(None, "--run is missing"), (3, "out of range"),
                                          (-1, "out of range")])
def test_generate_run_out_of_range_is_one_line(three_gans, tmp_path, run, message):
  from genimg_jax import generate

  with pytest.raises(UserError, match=message) as e:
    generate.load_run(three_gans[0], None, run)
  assert "pass --run 0 … 2" in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(UserError, match="single run"):
    generate.load_run(three_gans[1], None, 1)


def test_evaluate_scores_every_run_and_the_mean_over_seeds(three_gans, tmp_path):
  from genimg_jax.evaluate import evaluate_all

  many, _ = three_gans
  cache = str(tmp_path / "cache")
  out = str(tmp_path / "samples.npy")
  records = evaluate_all(many, num=40, cache_dir=cache, iwae_k=0, interpolations=False,
                         samples_out=out)
  per_run, summaries = records[:3], records[3:]
  saved = [np.load(str(tmp_path / f"samples_run{r}.npy")) for r in range(3)]  # One per run.
  assert not os.path.exists(out) and not np.array_equal(saved[0], saved[1])
  assert [r["run"] for r in per_run] == [0, 1, 2] and [r["seed"] for r in per_run] == [4, 5, 6]
  assert len(summaries) == 1 and summaries[0]["seeds"] == 3
  fids = np.array([r["fid"] for r in per_run])
  assert len(set(fids.tolist())) == 3
  np.testing.assert_allclose(summaries[0]["fid_mean"], fids.mean(), rtol=1e-12)
  np.testing.assert_allclose(summaries[0]["fid_std"], fids.std(), rtol=1e-12)


def test_evaluate_a_vae_sweep_averages_per_point(tmp_path):
  from genimg_jax.evaluate import evaluate_all
  from genimg_jax.train.loop import train_and_evaluate

  workdir = str(tmp_path / "vae")
  train_and_evaluate(make_tiny_vae_config(num_runs=2, sweep="beta=0.5,1", **CHEAP_EVAL), workdir)
  records = evaluate_all(workdir, num=40, cache_dir=str(tmp_path / "cache"), iwae_k=5,
                         interpolations=False)
  summaries = [r for r in records if "summary" in r]
  assert [s["beta"] for s in summaries] == [0.5, 1.0]
  for s, members in zip(summaries, (records[0:2], records[2:4])):
    values = [m["iwae_nll"] if "iwae_nll" in m else m["test_neg_elbo"] for m in members]
    key = "iwae_nll_mean" if "iwae_nll" in members[0] else "test_neg_elbo_mean"
    np.testing.assert_allclose(s[key], np.mean(values), rtol=1e-12)
