"""Evaluation in a run and on a run folder: `eval_every` scores the run and keeps the best
checkpoint (also across kill -9 and resume, bit for bit), `generate --step best`,
`python -m genimg_jax.evaluate` printing its JSON line and appending it to eval.jsonl, scoring
the very images generate writes for the same seed, and retraining a damaged classifier cache."""

import glob
import json
import os
import shutil
import signal

import numpy as np
import pytest

from genimg_jax.generate import load_run
from genimg_jax.train.vae_step import VAE
from tests.conftest import make_tiny_gan_config, make_tiny_vae_config, run_python
from tests.reliability_support import (  # Fixture env: conftest.
    TINY_GAN, Child, assert_bit_identical, checkpoint_steps, state_leaves, train)

pytestmark = pytest.mark.slow

EVAL = dict(eval_every=4, eval_num_samples=40, eval_classifier_epochs=0.02)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("eval_cache"))


def _eval_lines(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if "eval/fid" in r]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory, cache_dir):
  from genimg_jax.train.loop import train_and_evaluate

  workdir = str(tmp_path_factory.mktemp("gan_eval"))
  config = make_tiny_gan_config(keep_checkpoints=1, eval_cache_dir=cache_dir, **EVAL)
  final = train_and_evaluate(config, workdir)
  return workdir, final


def test_training_evaluates_and_keeps_the_newest_and_the_best(gan_run):
  from genimg_jax import checkpoint as ckpt

  workdir, final = gan_run
  lines = _eval_lines(workdir)
  assert [r["step"] for r in lines] == [4, 8, 12]  # eval_every 4 of 12 steps.
  for r in lines:
    assert r["eval/num_samples"] == 40 and r["eval/num_reference"] == 4000
    assert 0 <= r["eval/precision"] <= 1 and r["eval/fid"] > 0
  best = min(lines, key=lambda r: r["eval/fid"])["step"]
  checkpointer = ckpt.Checkpointer(workdir, keep=1)
  assert checkpointer.all_steps() == sorted({best, 12})  # Newest 1 and the best.
  assert ckpt.require_checkpoint(checkpointer, "best") == best
  checkpointer.close()
  assert final["eval/fid"] == lines[-1]["eval/fid"]
  assert load_run(workdir, "best")[2] == best


def test_evaluate_cli_prints_one_json_line_and_appends_it(gan_run, cache_dir, tmp_path):
  workdir, _ = gan_run
  args = ["-m", "genimg_jax.evaluate", "--workdir", workdir, "--num", "60", "--cache_dir",
          cache_dir]
  result = run_python(args + ["--step", "best"])
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 1
  record = json.loads(lines[0])
  best = min(_eval_lines(workdir), key=lambda r: r["eval/fid"])["step"]
  assert record["step"] == best and record["num_samples"] == 60
  for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage",
              "inception_score", "classifier_test_accuracy", "seconds"):
    assert key in record, key
  assert record["space"].startswith("classifier-mnist_embedded-")
  assert os.path.exists(record["interpolations"])
  again = run_python(args + ["--no_interpolations"])
  assert again.returncode == 0, again.stderr
  with open(os.path.join(workdir, "eval.jsonl")) as f:
    saved = [json.loads(line) for line in f]
  assert saved[0] == record and saved[1]["step"] == 12 and len(saved) == 2
  samples = tmp_path / "best.npy"
  generated = run_python(["-m", "genimg_jax.generate", "--workdir", workdir, "--num", "4",
                          "--out", str(samples), "--step", "best"])
  assert generated.returncode == 0 and f"of step {best}" in generated.stdout, generated.stderr


def test_evaluate_cli_errors_are_one_line(gan_run, tmp_path):
  workdir, _ = gan_run
  for extra, expected in ((["--step", "x"], "--step"),
                          (["--space", "inception"], "pass --inception_weights PATH"),
                          (["--num", "3"], "--num")):
    result = run_python(["-m", "genimg_jax.evaluate", "--workdir", workdir, *extra])
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert expected in result.stderr and "--config." not in result.stderr, result.stderr
  missing = run_python(["-m", "genimg_jax.evaluate", "--workdir", str(tmp_path / "none")])
  assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1


def test_evaluate_scores_the_images_generate_writes_for_the_same_seed(gan_run, cache_dir,
                                                                     tmp_path):
  workdir, _ = gan_run
  scored, generated = {}, {}
  for seed in (0, 5):
    scored[seed], generated[seed] = tmp_path / f"scored{seed}.npy", tmp_path / f"gen{seed}.npy"
    result = run_python(["-m", "genimg_jax.evaluate", "--workdir", workdir, "--num", "30",
                         "--seed", str(seed), "--cache_dir", cache_dir, "--no_interpolations",
                         "--samples_out", str(scored[seed])])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["num_samples"] == 30
    result = run_python(["-m", "genimg_jax.generate", "--workdir", workdir, "--num", "30",
                         "--seed", str(seed), "--out", str(generated[seed])])
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(scored[seed]), np.load(generated[seed]))
  assert np.load(scored[0]).shape == (30, 28, 28, 1)
  assert not np.allclose(np.load(scored[0]), np.load(scored[5]))  # Another seed, other images.


def test_evaluate_retrains_a_damaged_classifier_cache(gan_run, cache_dir, tmp_path):
  workdir, _ = gan_run
  damaged = str(tmp_path / "cache")
  shutil.copytree(cache_dir, damaged)
  (path,) = glob.glob(os.path.join(damaged, "classifier", "*.npz"))
  with open(path, "r+b") as f:
    f.truncate(5000)
  result = run_python(["-m", "genimg_jax.evaluate", "--workdir", workdir, "--num", "20",
                       "--cache_dir", damaged, "--no_interpolations"])
  assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
  said = [line for line in result.stderr.splitlines() if path in line]
  assert len(said) == 1 and "cannot be read" in said[0] and "again" in said[0], result.stderr
  with np.load(path) as new, np.load(glob.glob(os.path.join(cache_dir, "classifier",
                                                            "*.npz"))[0]) as old:
    assert sorted(new.files) == sorted(old.files)  # Replaced by the same (deterministic) one.
    for name in old.files:
      np.testing.assert_array_equal(new[name], old[name], err_msg=name)
  record = json.loads(result.stdout)
  assert record["classifier_test_accuracy"] == float(np.load(path)["test_accuracy"])


def test_vae_runs_keep_the_best_test_neg_elbo(tmp_path, cache_dir):
  from genimg_jax.evaluate import evaluate
  from genimg_jax.train.loop import train_and_evaluate

  workdir = str(tmp_path / "vae")
  config = make_tiny_vae_config(keep_checkpoints=1, eval_cache_dir=cache_dir, **EVAL)
  train_and_evaluate(config, workdir)
  lines = _eval_lines(workdir)
  best = min(lines, key=lambda r: r["eval/test_neg_elbo"])["step"]
  assert load_run(workdir, "best")[2] == best
  record = evaluate(workdir, num=40, step="best", cache_dir=cache_dir, iwae_k=3,
                    interpolations=False)
  assert record["test_neg_elbo"] > 0 and record["step"] == best
  # The IWAE bound needs the VAE family's log_importance_weights (added by the VAE rework).
  assert ("iwae_nll" in record) == VAE.estimates_likelihood


EVAL_FLAGS = ["--config.eval_every=50", "--config.eval_num_samples=40",
              "--config.eval_classifier_epochs=0.02", "--config.batch_size=8",
              "--config.sample_every=100000", "--config.num_grid_samples=4",
              "--config.num_steps=200", "--config.checkpoint_every=20", "--config.log_every=10",
              "--config.keep_checkpoints=2"]


def test_kill9_and_resume_with_evaluation_is_bit_identical_with_the_same_best(env, tmp_path,
                                                                             cache_dir):
  from genimg_jax import checkpoint as ckpt

  args = TINY_GAN + EVAL_FLAGS + [f"--config.eval_cache_dir={cache_dir}"]
  reference = str(tmp_path / "reference")
  done = train(args + ["--workdir", reference], env)
  assert done.returncode == 0, done.describe()
  workdir = str(tmp_path / "killed")
  child = Child(args + ["--workdir", workdir], env)
  child.wait_for(lambda: any(s >= 100 for s in checkpoint_steps(workdir)), interval=0.002)
  child.proc.send_signal(signal.SIGKILL)
  killed = child.finish()
  assert killed.returncode == -signal.SIGKILL, "the run ended before the kill: " + killed.describe()
  restarted = train(args + ["--workdir", workdir], env)
  assert restarted.returncode == 0, restarted.describe()
  leaves, step = state_leaves(workdir)
  expected, _ = state_leaves(reference)
  assert step == 200
  assert_bit_identical(leaves, expected, "after kill -9 and resume with eval_every")
  bests = []
  for folder in (reference, workdir):
    checkpointer = ckpt.Checkpointer(folder, keep=2)
    bests.append(checkpointer.best_step())
    checkpointer.close()
  assert bests[0] == bests[1] and bests[0] in (50, 100, 150, 200)
  assert _eval_lines(workdir) == _eval_lines(reference)  # The same scores at the same steps.
  best_leaves, _ = state_leaves(workdir, "best")
  assert_bit_identical(best_leaves, state_leaves(reference, "best")[0], "best checkpoint")
