"""One run per work directory: an exclusive lock held for the run's life (docs/reliability.md).

`<workdir>/.lock` is locked with `fcntl.flock(LOCK_EX | LOCK_NB)` on an open descriptor, and
holds a JSON record of the holder: {"pid", "host", "started" (UTC ISO time), "heartbeat"}.
The kernel drops a flock when its process dies (kill -9 included), so a dead holder's lock is
free and the next run takes it over, with no manual step. The record only names the holder in
the refusal line, except in one case: when the lock is free but the record names another host
whose heartbeat (the file's mtime, refreshed every HEARTBEAT_S by a daemon thread) is younger
than STALE_AFTER_S. That covers file systems where flock is local to each host (NFS mounted
with `local_lock=flock`/`all`, some FUSE and SMB mounts): a live run on another host still
refuses the second run, and a dead host's lock is taken over once its heartbeat is stale.
On local disks and NFSv4 (flock is a whole-file lock the server sees; a crashed client's lock
goes when its lease expires, ~90 s) flock alone is exact. Clocks of hosts sharing a work
directory must agree to well under STALE_AFTER_S.

The lock file is never deleted (deleting it would let two runs lock two different inodes);
a clean exit empties the record and unlocks.
"""

import datetime
import fcntl
import json
import os
import socket
import threading
import time

from genimg_jax.errors import UserError

LOCK_FILE = ".lock"
HEARTBEAT_S = float(os.environ.get("GENIMG_LOCK_HEARTBEAT_S", 30))  # Record refresh interval.
STALE_AFTER_S = float(os.environ.get("GENIMG_LOCK_STALE_S", 300))  # Another host's lock is dead
# after this long without a heartbeat (only read where flock is not shared between hosts).


def _read_record(fd: int) -> dict:
  """The holder record in the open lock file ({} when empty or torn)."""
  try:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
    record = json.loads(text) if text.strip() else {}
    return record if isinstance(record, dict) else {}
  except (OSError, ValueError):
    return {}


def _describe(record: dict, path: str) -> str:
  if not record:
    return f"another run (its lock file {path} names no holder yet)"
  return (f"pid {record.get('pid')} on host {record.get('host')} (started "
          f"{record.get('started')})")


class WorkdirLock:
  """Context manager: holds `<workdir>/.lock` exclusively, or raises a one-line UserError."""

  def __init__(self, workdir: str, hostname: str | None = None):
    self.path = os.path.join(workdir, LOCK_FILE)
    self.host = hostname or socket.gethostname()
    self._fd = None
    self._stop = threading.Event()
    self._thread = None

  def acquire(self) -> "WorkdirLock":
    """Takes the lock (a dead holder's included); touches nothing else in the work directory."""
    try:
      os.makedirs(os.path.dirname(self.path), exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise UserError(f"work directory {os.path.dirname(self.path)} is not writable "
                      f"({e.strerror}): pass a writable --workdir") from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      record = self._settled_record(fd)
      os.close(fd)
      raise UserError(self._refusal(record)) from None
    record = _read_record(fd)
    age = time.time() - os.fstat(fd).st_mtime
    if record and record.get("host") != self.host and age < STALE_AFTER_S:
      fcntl.flock(fd, fcntl.LOCK_UN)  # A live holder on a host whose flock we cannot see.
      os.close(fd)
      raise UserError(self._refusal(record, f"; its last heartbeat was {age:.0f}s ago, a lock "
                                            f"silent for {STALE_AFTER_S:.0f}s is taken over"))
    self._fd = fd
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    self._write({"pid": os.getpid(), "host": self.host, "started": now,
                 "took_over": record or None})
    self._thread = threading.Thread(target=self._heartbeat, name="workdir-lock", daemon=True)
    self._thread.start()
    return self

  def _settled_record(self, fd: int) -> dict:
    """The holder's record, waiting briefly for a holder that has locked but not yet written."""
    for _ in range(20):
      record = _read_record(fd)
      if record:
        return record
      time.sleep(0.05)
    return {}

  def _refusal(self, record: dict, extra: str = "") -> str:
    workdir = os.path.dirname(self.path)
    return (f"work directory {workdir} is in use by {_describe(record, self.path)}{extra}: "
            f"wait for that run to end, or pass another --workdir")

  def _write(self, record: dict) -> None:
    data = json.dumps(record).encode()
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, data, 0)
    os.fsync(self._fd)

  def _heartbeat(self) -> None:
    """Refreshes the lock file's mtime until released (other hosts read it as 'alive')."""
    while not self._stop.wait(HEARTBEAT_S):
      try:
        os.utime(self._fd)
      except OSError:
        pass  # A transient I/O error; the next beat retries.

  def release(self) -> None:
    """Empties the record and unlocks (safe to call twice)."""
    if self._fd is None:
      return
    self._stop.set()
    self._thread.join()  # No heartbeat may touch the descriptor once it is closed.
    try:
      os.ftruncate(self._fd, 0)
    except OSError:
      pass
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
