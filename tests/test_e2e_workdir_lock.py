"""One run per work directory, through `python train.py`: a run refused by a live holder changes
no file of the holder's folder (checksums and mtimes); of two runs started together exactly one
trains; a holder killed with SIGKILL leaves its record and the same command takes over and
finishes."""

import json
import os
import shutil
import signal

import pytest

from tests.reliability_support import (  # Fixtures env: conftest.
    NUM_STEPS,
    QUIET,
    RUNS,
    TINY_GAN,
    Child,
    assert_one_line_error,
    checkpoint_steps,
    holder_process,
    lock_record,
    state_leaves,
    train,
    tree_checksum)

pytestmark = pytest.mark.slow


def test_refused_run_touches_nothing(trained_gan_run, env, tmp_path):
  """A run refused by a live holder leaves every file as it was (config.json, metrics too)."""
  workdir = str(tmp_path / "run")
  shutil.copytree(trained_gan_run["workdir"], workdir)
  holder = holder_process(workdir)
  try:
    before = tree_checksum(workdir)
    mtimes = {n: os.stat(os.path.join(workdir, n)).st_mtime_ns for n in os.listdir(workdir)}
    result = train(TINY_GAN + QUIET + ["--workdir", workdir], env)
    line = assert_one_line_error(result)
    assert f"pid {holder.pid}" in line and "in use" in line, line
    assert tree_checksum(workdir) == before
    assert {n: os.stat(os.path.join(workdir, n)).st_mtime_ns for n in os.listdir(workdir)} \
        == mtimes
  finally:
    holder.kill()
    holder.wait()


def test_two_runs_started_together_one_trains(env, tmp_path):
  workdir = str(tmp_path / "run")
  args = RUNS["gan"] + ["--workdir", workdir]
  first, second = Child(args, env), Child(args, env)
  results = [first.finish(), second.finish()]
  winners = [r for r in results if r.returncode == 0]
  losers = [r for r in results if r.returncode != 0]
  assert len(winners) == 1 and len(losers) == 1, "\n".join(r.describe() for r in results)
  line = assert_one_line_error(losers[0])
  assert "is in use by pid" in line, line
  _, step = state_leaves(workdir)
  assert step == NUM_STEPS
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f]
  assert steps == sorted(set(steps)), "metrics of two runs mixed"


def test_kill9_of_the_holder_then_same_command_resumes(env, tmp_path):
  workdir = str(tmp_path / "run")
  args = RUNS["gan"] + ["--workdir", workdir]
  child = Child(args, env)
  child.wait_for(lambda: checkpoint_steps(workdir), interval=0.005)
  child.proc.send_signal(signal.SIGKILL)
  killed = child.finish()
  if killed.returncode == 0:
    pytest.skip("the run finished before the kill landed")
  assert lock_record(workdir)["pid"] == child.proc.pid
  restarted = train(args, env)
  assert restarted.returncode == 0, restarted.describe()
  _, step = state_leaves(workdir)
  assert step == NUM_STEPS
  assert lock_record(workdir) == {}  # Released at the end of the resumed run.
