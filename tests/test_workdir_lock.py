"""One run per work directory (train/workdir_lock.py), in-process: a held lock refuses a second
holder in one line naming pid, host and start time; a holder killed with SIGKILL leaves its
record but not its flock, so the next run takes over; a record of another host is honoured
while its heartbeat is fresh, taken over once stale. Through `python train.py`:
test_e2e_workdir_lock.py."""

import json
import os
import signal
import time

import pytest

from genimg_jax.errors import UserError
from genimg_jax.train import workdir_lock
from tests.reliability_support import holder_process, lock_record


def test_second_holder_is_refused_naming_the_first(tmp_path):
  with workdir_lock.WorkdirLock(str(tmp_path)):
    record = lock_record(tmp_path)
    assert record["pid"] == os.getpid() and record["host"] and record["started"]
    with pytest.raises(UserError) as error:
      workdir_lock.WorkdirLock(str(tmp_path)).acquire()
    line = str(error.value)
    assert f"pid {os.getpid()}" in line and record["host"] in line and record["started"] in line
    assert "\n" not in line
    assert lock_record(tmp_path) == record  # The refused one did not rewrite the record.
  assert lock_record(tmp_path) == {}  # A clean release empties the record...
  with workdir_lock.WorkdirLock(str(tmp_path)):  # ...and the next run takes the lock.
    assert lock_record(tmp_path)["took_over"] is None


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
  holder = holder_process(tmp_path)
  with pytest.raises(UserError, match=f"pid {holder.pid} "):
    workdir_lock.WorkdirLock(str(tmp_path)).acquire()
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  assert lock_record(tmp_path)["pid"] == holder.pid  # kill -9 left its record behind...
  with workdir_lock.WorkdirLock(str(tmp_path)):  # ...but not its flock.
    record = lock_record(tmp_path)
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
    assert lock_record(tmp_path)["took_over"] == other


def test_same_host_record_without_a_flock_is_taken_over(tmp_path):
  """A record of this host with no flock behind it is a dead run's, however fresh."""
  path = tmp_path / workdir_lock.LOCK_FILE
  lock = workdir_lock.WorkdirLock(str(tmp_path))
  path.write_text(json.dumps({"pid": 99999999, "host": lock.host, "started": "x"}))
  with lock:
    assert lock_record(tmp_path)["took_over"]["pid"] == 99999999


# --------------------------------------------------------------------------- through train.py
