"""Runs that never lose work, part 2: failures, through `python train.py`.

* A NaN/Inf loss: exit 3, one line naming the step and the metric, the last good checkpoint
  kept (and finite).
* Bad input (corrupt / incompatible checkpoint, full disk, unwritable work directory, invalid
  values, batch not divisible by the device count): exit != 0, one line on stderr, no
  traceback, the checkpoints on disk untouched; 8 devices train like 1.
"""

import os
import re
import shutil

import numpy as np
import pytest

from tests.conftest import xla_flags
from tests.reliability_support import (  # Fixtures env, references: conftest.
    KEEP_ALL,
    NUM_STEPS,
    QUIET,
    RUNS,
    TINY_GAN,
    TINY_VAE,
    assert_bit_identical,
    assert_one_line_error,
    checkpoint_entries,
    checkpoint_steps,
    copy_run,
    in_parallel,
    nonfinite_leaves,
    state_leaves,
    train,
    tree_checksum)

pytestmark = pytest.mark.slow


NAN_RE = re.compile(r"(\w+) became (nan|inf|-inf) at step (\d+)")


def test_nan_from_the_first_steps_stops_without_a_checkpoint(env, tmp_path):
  workdir = str(tmp_path / "run")
  result = train(TINY_GAN + QUIET + ["--config.learning_rate=inf", "--config.num_steps=40",
                                     "--config.checkpoint_every=10", "--config.log_every=10",
                                     "--config.steps_per_dispatch=5", "--workdir", workdir], env)
  line = assert_one_line_error(result)
  assert result.returncode == 3, result.describe()
  match = NAN_RE.search(line)
  assert match, line
  assert int(match.group(3)) <= 2, line  # Inf step size: the very first updates blow up.
  assert "no checkpoint was saved" in line, line
  assert checkpoint_steps(workdir) == [], checkpoint_entries(workdir)


def test_nan_after_good_checkpoints_keeps_the_last_good_one(env, tmp_path):
  """The tiny VAE with Adam at 0.4 trains for a while, then its gradient overflows (step 15 on
  jax 0.10 / CPU; deterministic). The checkpoints before that stay and are finite."""
  workdir = str(tmp_path / "run")
  result = train(TINY_VAE + QUIET + ["--config.learning_rate=0.4", "--config.num_steps=600",
                                     "--config.checkpoint_every=10", "--config.log_every=10",
                                     "--config.steps_per_dispatch=1", "--workdir", workdir], env)
  line = assert_one_line_error(result)
  assert result.returncode == 3, result.describe()
  match = NAN_RE.search(line)
  assert match, line
  bad_step = int(match.group(3))
  steps = checkpoint_steps(workdir)
  assert steps and bad_step > 10, (
      f"{line}: the run must diverge after its first checkpoint for this test to mean "
      f"anything; pick another learning rate if a JAX upgrade changed where it diverges")
  assert max(steps) < bad_step, (line, steps)
  assert f"last good checkpoint, step {max(steps)}" in line, line
  leaves, step = state_leaves(workdir)
  assert step == max(steps)
  assert nonfinite_leaves(leaves) == [], f"non-finite leaves in checkpoint {step}"


def test_checkpoint_kept_after_a_nan_has_finite_params(env, tmp_path):
  workdir = str(tmp_path / "run")
  result = train(TINY_VAE + QUIET + ["--config.learning_rate=inf", "--config.num_steps=20",
                                     "--config.checkpoint_every=1", "--config.log_every=10",
                                     "--config.steps_per_dispatch=1", "--workdir", workdir], env)
  line = assert_one_line_error(result)
  assert result.returncode == 3 and NAN_RE.search(line), result.describe()
  if checkpoint_steps(workdir):
    leaves, step = state_leaves(workdir)
    assert nonfinite_leaves(leaves) == [], (
        f"{line}\ncheckpoint {step} holds non-finite values: {nonfinite_leaves(leaves)}")


# --------------------------------------------------------------------------- bad input


def test_corrupt_checkpoint_is_one_line_and_left_as_is(references, env, tmp_path):
  workdir = copy_run(references["gan"].workdir, tmp_path)
  latest = max(checkpoint_steps(workdir))
  data_dir = os.path.join(workdir, "checkpoints", str(latest), "state", "ocdbt.process_0", "d")
  names = os.listdir(data_dir)
  assert names
  for name in names:
    with open(os.path.join(data_dir, name), "r+b") as f:
      f.truncate(3)
  before = tree_checksum(os.path.join(workdir, "checkpoints"))
  args = RUNS["gan"] + KEEP_ALL + ["--workdir", workdir]
  result = train(args, env)
  line = assert_one_line_error(result)
  assert line.startswith("error:") and f"checkpoints/{latest}" in line, line
  assert tree_checksum(os.path.join(workdir, "checkpoints")) == before
  # The advice works: move the corrupt one away and the run resumes from the one before.
  shutil.move(os.path.join(workdir, "checkpoints", str(latest)), str(tmp_path / "corrupt"))
  resumed = train(args, env)
  assert resumed.returncode == 0, resumed.describe()
  leaves, step = state_leaves(workdir)
  assert step == NUM_STEPS
  assert_bit_identical(leaves, references["gan"].final, "after moving the corrupt one away")


@pytest.mark.parametrize("case", ["latent_dim", "vae_as_gan"])
def test_incompatible_checkpoint_is_one_line_naming_the_keys(case, references, env, tmp_path):
  if case == "latent_dim":
    workdir = copy_run(references["gan"].workdir, tmp_path)
    args = RUNS["gan"] + ["--config.latent_dim=16"]
    expected = ["latent_dim", "16", "8"]
  else:
    workdir = copy_run(references["vae"].workdir, tmp_path)
    args = RUNS["gan"]
    expected = ["from a vae run", "not gan", "--model vae"]
  before = tree_checksum(os.path.join(workdir, "checkpoints"))
  line = assert_one_line_error(train(args + ["--workdir", workdir], env))
  for text in expected:
    assert text in line, line
  assert tree_checksum(os.path.join(workdir, "checkpoints")) == before


FSIZE_LIMIT = 512 * 1024  # The default VAE's state is ~2.4 MB in data files of ~0.6-0.8 MB.
FULL_DISK_VAE = ["--model", "vae", "--config.batch_size=8", "--config.checkpoint_every=10",
                 "--config.log_every=10", "--config.steps_per_dispatch=10",
                 "--config.sample_every=100000", "--config.num_grid_samples=4",
                 "--config.num_recon=4"]


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory, env):
  """Checkpoint 10 of the default VAE, then a resume to 20 that cannot write files over 512 KiB,
  then a plain restart."""
  workdir = str(tmp_path_factory.mktemp("full_disk") / "run")
  first = train(FULL_DISK_VAE + ["--config.num_steps=10", "--workdir", workdir], env)
  assert first.returncode == 0, first.describe()
  assert checkpoint_steps(workdir) == [10]
  checkpoint_10 = os.path.join(workdir, "checkpoints", "10")
  sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(checkpoint_10) for f in fs]
  assert max(sizes) > FSIZE_LIMIT, "the checkpoint fits under the limit: the test means nothing"
  before = tree_checksum(checkpoint_10)
  args = FULL_DISK_VAE + ["--config.num_steps=20", "--workdir", workdir]
  limited = train(args, env, file_size_limit_kib=FSIZE_LIMIT // 1024)
  after = tree_checksum(checkpoint_10)
  left = checkpoint_entries(workdir)
  restarted = train(args, env)
  print(f"full disk: {limited.describe()}\nleft: {left}")
  return dict(workdir=workdir, limited=limited, intact=before == after, left=left,
              restarted=restarted)


def test_full_disk_keeps_the_checkpoint_and_a_restart_resumes(full_disk):
  limited = full_disk["limited"]
  assert limited.returncode == 2, limited.describe()
  last = limited.stderr.splitlines()[-1]
  assert last.startswith("error: cannot save the checkpoint of step 20"), limited.describe()
  assert "the checkpoint of step 10 is intact" in last, last
  assert full_disk["intact"], "checkpoint 10 changed"
  assert "20" not in full_disk["left"], full_disk["left"]  # No half checkpoint looks whole.
  restarted = full_disk["restarted"]
  assert restarted.returncode == 0, restarted.describe()
  assert "step 10/20" not in restarted.stdout, "the restart started over instead of resuming"
  assert "step 20/20" in restarted.stdout, restarted.describe()
  _, step = state_leaves(full_disk["workdir"])
  assert step == 20


def test_full_disk_is_one_line(full_disk):
  assert_one_line_error(full_disk["limited"])


def test_unwritable_workdir_is_one_line(env, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("a regular file, not a folder")
  workdir = str(blocker / "run")
  line = assert_one_line_error(train(RUNS["gan"] + ["--workdir", workdir], env))
  assert workdir in line and "not writable" in line, line


@pytest.mark.parametrize("flag,key", [("--config.num_steps=0", "num_steps"),
                                      ("--config.batch_size=-1", "batch_size")])
def test_invalid_value_is_one_line(flag, key, env, tmp_path):
  workdir = str(tmp_path / "run")
  line = assert_one_line_error(train(RUNS["gan"] + [flag, "--workdir", workdir], env))
  assert key in line and flag.split("=")[1] in line, line
  assert checkpoint_steps(workdir) == []


# --------------------------------------------------------------------------- several devices


EIGHT_DEVICES = xla_flags(8)


def test_batch_not_divisible_by_devices_is_one_line(env, tmp_path):
  result = train(RUNS["gan"] + ["--config.batch_size=12", "--workdir", str(tmp_path / "run")],
                 dict(env, XLA_FLAGS=EIGHT_DEVICES))
  line = assert_one_line_error(result)
  assert "8 devices" in line and "12" in line, line


def test_data_parallel_on_8_devices_matches_1_device(env, tmp_path):
  args = TINY_GAN + QUIET + ["--config.batch_size=16", "--config.num_steps=30",
                             "--config.log_every=10", "--config.checkpoint_every=30",
                             "--config.steps_per_dispatch=10"]

  def run(devices):
    workdir = str(tmp_path / f"devices_{devices}")
    child_env = dict(env, XLA_FLAGS=EIGHT_DEVICES) if devices == 8 else env
    return workdir, train(args + ["--workdir", workdir], child_env)

  (one, one_result), (eight, eight_result) = in_parallel(run, [1, 8])
  assert one_result.returncode == 0, one_result.describe()
  assert eight_result.returncode == 0, eight_result.describe()
  (one_leaves, _), (eight_leaves, _) = state_leaves(one), state_leaves(eight)
  diffs = {p: float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0
           for (p, x), (_, y) in zip(one_leaves, eight_leaves)}
  print(f"8 vs 1 device: max |difference| {max(diffs.values()):.3g}")
  for (path, x), (_, y) in zip(eight_leaves, one_leaves):
    if np.issubdtype(x.dtype, np.floating):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=path)
    else:
      np.testing.assert_array_equal(x, y, err_msg=path)  # step, rng, data order.
