"""One run per work directory: the lock, in-process and through `python train.py`.

* A held lock refuses a second holder in one line naming pid, host and start time, and the
  refused run changes no file of the holder's work directory (checksums and mtimes).
* Two runs started together: exactly one trains, the other exits non-zero with its line.
* A holder killed with SIGKILL leaves its record; the same command takes the lock over and
  finishes. A record of another host is honoured while its heartbeat is fresh, taken over once
  stale.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from genimg_jax.errors import UserError
from genimg_jax.train import workdir_lock
from tests.conftest import REPO_ROOT, subprocess_env
from tests.reliability_support import (  # Fixtures env: conftest.
    NUM_STEPS,
    QUIET,
    RUNS,
    TINY_GAN,
    Child,
    assert_one_line_error,
    checkpoint_steps,
    state_leaves,
    train,
    tree_checksum)

HOLD_SCRIPT = ("import sys, time; from genimg_jax.train.workdir_lock import WorkdirLock; "
               "WorkdirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)")


def _record(workdir) -> dict:
  with open(os.path.join(workdir, workdir_lock.LOCK_FILE)) as f:
    text = f.read()
  return json.loads(text) if text else {}


def _holder(workdir) -> subprocess.Popen:
  """A separate process holding the lock on `workdir` (flock is per process / open file)."""
  proc = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(workdir)], cwd=REPO_ROOT,
                          env=subprocess_env(), stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_second_holder_is_refused_naming_the_first(tmp_path):
  with workdir_lock.WorkdirLock(str(tmp_path)):
    record = _record(tmp_path)
    assert record["pid"] == os.getpid() and record["host"] and record["started"]
    with pytest.raises(UserError) as error:
      workdir_lock.WorkdirLock(str(tmp_path)).acquire()
    line = str(error.value)
    assert f"pid {os.getpid()}" in line and record["host"] in line and record["started"] in line
    assert "\n" not in line
    assert _record(tmp_path) == record  # The refused one did not rewrite the record.
  assert _record(tmp_path) == {}  # A clean release empties the record...
  with workdir_lock.WorkdirLock(str(tmp_path)):  # ...and the next run takes the lock.
    assert _record(tmp_path)["took_over"] is None


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
  holder = _holder(tmp_path)
  with pytest.raises(UserError, match=f"pid {holder.pid} "):
    workdir_lock.WorkdirLock(str(tmp_path)).acquire()
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  assert _record(tmp_path)["pid"] == holder.pid  # kill -9 left its record behind...
  with workdir_lock.WorkdirLock(str(tmp_path)):  # ...but not its flock.
    record = _record(tmp_path)
    assert record["pid"] == os.getpid() and record["took_over"]["pid"] == holder.pid


def test_other_hosts_record_is_honoured_until_its_heartbeat_is_stale(tmp_path):
  """Where flock is not shared between hosts the record decides: fresh ⇒ refuse, stale ⇒ take."""
  path = tmp_path / workdir_lock.LOCK_FILE
  other = {"pid": 4242, "host": "elsewhere-node-7", "started": "2026-01-01T00:00:00+00:00"}
  path.write_text(json.dumps(other))
  with pytest.raises(UserError, match="pid 4242 on host elsewhere-node-7"):
    workdir_lock.WorkdirLock(str(tmp_path)).acquire()
  assert json.loads(path.read_text()) == other
  stale = time.time() - workdir_lock.STALE_AFTER_S - 1
  os.utime(path, (stale, stale))
  with workdir_lock.WorkdirLock(str(tmp_path)):
    assert _record(tmp_path)["took_over"] == other


def test_same_host_record_without_a_flock_is_taken_over(tmp_path):
  """A record of this host with no flock behind it is a dead run's, however fresh."""
  path = tmp_path / workdir_lock.LOCK_FILE
  lock = workdir_lock.WorkdirLock(str(tmp_path))
  path.write_text(json.dumps({"pid": 99999999, "host": lock.host, "started": "x"}))
  with lock:
    assert _record(tmp_path)["took_over"]["pid"] == 99999999


# --------------------------------------------------------------------------- through train.py


def test_refused_run_touches_nothing(trained_gan_run, env, tmp_path):
  """A run refused by a live holder leaves every file as it was (config.json, metrics too)."""
  import shutil
  workdir = str(tmp_path / "run")
  shutil.copytree(trained_gan_run["workdir"], workdir)
  holder = _holder(workdir)
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
  assert _record(workdir)["pid"] == child.proc.pid
  restarted = train(args, env)
  assert restarted.returncode == 0, restarted.describe()
  _, step = state_leaves(workdir)
  assert step == NUM_STEPS
  assert _record(workdir) == {}  # Released at the end of the resumed run.
