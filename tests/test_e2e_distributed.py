"""Several processes through jax.distributed, on one machine.

Two `python train.py` processes × 2 CPU devices each talk over 127.0.0.1 (a free port, gloo
collectives). Each holds only its data shard (data_shards = 2, one per process), so their
global batches are by construction those of one process with 4 devices and data_shards=2:
* a few GAN steps, a checkpoint written collectively, the same commands again resume from it
  (restored by both), and the final parameters equal the 1-process 4-device run's (rtol 1e-5,
  atol 1e-6: the all-reduce runs over gloo instead of in-process, so sums may be reassociated);
* only process 0 wrote outputs (one TensorBoard file, metrics once per step, process 1 silent);
* kill -9 of the pair mid-run, then the same commands: they take the lock over and finish;
* with streamed batches (data_on_device=False) the pair ends where the 1-process run ends;
* kill -9 of process 1 alone: process 0 stops within 2 minutes with one line naming process 1,
  the last checkpoint and its command, and the same two commands then finish the run.
Every child is bounded in time and killed if the test fails.
"""

import json
import os
import shlex
import signal
import socket
import time

import numpy as np
import pytest

from genimg_jax.errors import PeerLost
from tests.conftest import xla_flags
from tests.reliability_support import (Child, assert_one_line_error, checkpoint_entries,
                                       checkpoint_steps, state_leaves, train)

pytestmark = pytest.mark.slow

TIMEOUT_S = 600  # Per child; generous: two JAX start-ups and compiles on a loaded machine.
ARGS = ["--model", "gan", "--config.generator_hidden=(32,16)",
        "--config.discriminator_hidden=(32,16)", "--config.latent_dim=8",
        "--config.batch_size=8", "--config.num_grid_samples=4", "--config.log_every=2",
        "--config.sample_every=4", "--config.checkpoint_every=4", "--config.steps_per_dispatch=2",
        "--config.data_shards=2"]
RTOL, ATOL = 1e-5, 1e-6


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _devices(env, n):
  return dict(env, XLA_FLAGS=xla_flags(n))


def _pair_commands(args, workdir, port=None) -> list[list[str]]:
  """Each process's train.py arguments (a free coordinator port unless `port` is given)."""
  flags = ["--config.distributed=True",
           f"--config.coordinator_address=127.0.0.1:{port or _free_port()}",
           "--config.num_processes=2"]
  return [args + flags + [f"--config.process_id={i}", "--workdir", str(workdir)]
          for i in range(2)]


def _start_pair(args, workdir, env, devices=2, commands=None) -> list[Child]:
  return [Child(command, _devices(env, devices))
          for command in commands or _pair_commands(args, workdir)]


def _finish_pair(children):
  try:
    return [child.finish(timeout=TIMEOUT_S) for child in children]
  finally:
    for child in children:
      if child.running():
        child.proc.kill()


def _assert_close(workdir, reference):
  (got, step), (want, ref_step) = state_leaves(str(workdir)), state_leaves(str(reference))
  assert step == ref_step
  worst = 0.0
  for (path, x), (_, y) in zip(got, want):
    if np.issubdtype(x.dtype, np.floating):
      np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=path)
      worst = max(worst, float(np.max(np.abs(x - y))) if x.size else 0.0)
    else:
      np.testing.assert_array_equal(x, y, err_msg=path)
  return worst


def test_two_processes_resident_and_streamed_equal_one_process_with_four_devices(env, tmp_path):
  """Two processes × 2 devices, 4 steps then resumed to 8, end where one process with 4 devices
  ends: with the set on the devices, and streamed (data_on_device=False: each process streams
  only its shard's rows with Grain and saves its own iterator state). One reference for both."""
  reference = tmp_path / "one_process"
  result = train(ARGS + ["--config.num_steps=8", "--workdir", str(reference)], _devices(env, 4))
  assert result.returncode == 0, result.describe()

  workdir = tmp_path / "two_processes"
  first = _finish_pair(_start_pair(ARGS + ["--config.num_steps=4"], workdir, env))
  assert all(r.returncode == 0 for r in first), "\n".join(r.describe() for r in first)
  assert checkpoint_steps(workdir) == [4]
  second = _finish_pair(_start_pair(ARGS + ["--config.num_steps=8"], workdir, env))
  assert all(r.returncode == 0 for r in second), "\n".join(r.describe() for r in second)
  assert checkpoint_steps(workdir) == [4, 8]
  print(f"2 processes vs 1: max |difference| {_assert_close(workdir, reference):.3g}")

  names = sorted(os.listdir(workdir))
  assert len([n for n in names if n.startswith("events.out.tfevents")]) == 2  # One per run.
  assert "config.json" in names and "samples_8.png" in names
  with open(workdir / "metrics.jsonl") as f:
    steps = [json.loads(line)["step"] for line in f]
  assert steps == [2, 4, 6, 8]  # Written once (by process 0), resumed without duplicates.
  for run in (first, second):
    assert "step " in run[0].stdout and "step " not in run[1].stdout, run[1].describe()

  workdir, streamed = tmp_path / "two_processes_streamed", ["--config.data_on_device=False"]
  for steps in (4, 8):
    run = _finish_pair(_start_pair(ARGS + streamed + [f"--config.num_steps={steps}"], workdir,
                                   env))
    assert all(r.returncode == 0 for r in run), "\n".join(r.describe() for r in run)
  for i in range(2):
    with open(workdir / "checkpoints" / "4" / "data" / f"process_{i}-of-2.json") as f:
      assert json.load(f) == {"next_index": 4}
  print(f"2 streaming processes vs 1: max |difference| {_assert_close(workdir, reference):.3g}")


def test_kill9_of_both_processes_then_same_commands_resume(env, tmp_path):
  reference = tmp_path / "one_process"
  args = ARGS + ["--config.num_steps=200", "--config.checkpoint_every=20",
                 "--config.sample_every=1000", "--config.log_every=20"]
  workdir = tmp_path / "two_processes"
  children = _start_pair(args, workdir, env)
  try:
    children[0].wait_for(lambda: checkpoint_steps(workdir), timeout=TIMEOUT_S, interval=0.01)
    for child in children:
      child.proc.send_signal(signal.SIGKILL)
  finally:
    killed = _finish_pair(children)
  if all(r.returncode == 0 for r in killed):
    pytest.skip("the run finished before the kill landed")
  with open(workdir / ".lock") as f:
    assert json.load(f)["pid"] == children[0].proc.pid  # Process 0 held the lock.
  again = _finish_pair(_start_pair(args, workdir, env))
  assert all(r.returncode == 0 for r in again), "\n".join(r.describe() for r in again)
  result = train(args + ["--workdir", str(reference)], _devices(env, 4))
  assert result.returncode == 0, result.describe()
  _assert_close(workdir, reference)


@pytest.mark.parametrize("moment", ["between_saves", "inside_a_save"])
def test_kill9_of_process_1_stops_process_0_in_one_line_and_the_same_commands_resume(moment, env,
                                                                                    tmp_path):
  every = {"between_saves": 100, "inside_a_save": 20}[moment]
  args = ARGS + ["--config.num_steps=400", f"--config.checkpoint_every={every}",
                 "--config.sample_every=1000", "--config.log_every=10"]
  workdir = tmp_path / "two_processes"
  commands = _pair_commands(args, workdir)
  children = _start_pair(args, workdir, env, devices=1, commands=commands)

  def between_saves():  # Step 100 saved and step 120 logged: the next save is 80 steps away.
    logged = workdir / "metrics.jsonl"
    if not checkpoint_steps(workdir) or not logged.exists():
      return False
    with open(logged) as f:
      return any(json.loads(line)["step"] >= 120 for line in f if line.strip())

  def inside_a_save():  # A checkpoint saved, and the next one still Orbax's temporary folder.
    return checkpoint_steps(workdir) and any("tmp" in n for n in checkpoint_entries(workdir))

  try:
    # Between saves the kill lands in a training step's collective, inside a save in one of
    # Orbax's: gloo fails at once in the survivor either way, which then holds its roll call.
    children[1].wait_for(between_saves if moment == "between_saves" else inside_a_save,
                         timeout=TIMEOUT_S, interval=0.002)
    children[1].proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    survivor = children[0].finish(timeout=180)  # Killed past it: the assertion below fails.
    seconds = time.monotonic() - killed
  finally:
    for child in children:
      if child.running():
        child.proc.kill()
  children[1].finish()
  if survivor.returncode == 0:
    pytest.skip("the run finished before the kill landed")
  print(f"process 0 stopped {seconds:.1f}s after the kill of process 1 ({moment})")
  assert seconds < 60, survivor.describe()
  assert survivor.returncode == PeerLost.exit_code, survivor.describe()
  line = assert_one_line_error(survivor)
  assert "process 1 of 2 stopped responding" in line, line
  last = max(checkpoint_steps(workdir))  # What a resume starts from.
  assert f"the last checkpoint is step {last} in {workdir / 'checkpoints'}" in line, line
  assert shlex.join(["python", "train.py", *commands[0]]) in line, line
  again = _finish_pair(_start_pair(args, workdir, env, devices=1, commands=commands))
  assert all(r.returncode == 0 for r in again), "\n".join(r.describe() for r in again)
  assert max(checkpoint_steps(workdir)) == 400
  with open(workdir / "metrics.jsonl") as f:
    assert [json.loads(line)["step"] for line in f][-1] == 400
