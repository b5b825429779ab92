"""Check that a data set fits in a device's free memory before it is put there.

Training keeps the whole data set on the device by default; a set that does not fit should stop
with one line giving both sizes and the way out (`data_on_device=False`: stream batches), not
with an allocator error deep inside `jax.device_put`.
"""

import os

from genimg_jax.errors import UserError

GIB = 2**30
MEMINFO = "/proc/meminfo"  # Linux: MemAvailable counts reclaimable page cache as free.


def host_available_bytes() -> int:
  """Memory the host can still give: MemAvailable on Linux, else free physical pages."""
  try:
    with open(MEMINFO) as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024  # Reported in kB.
  except OSError:
    pass
  return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def available_bytes(device) -> int | None:
  """Free memory of `device` in bytes; the host's for CPU devices; None when unknown."""
  try:
    stats = device.memory_stats()
  except Exception:  # pylint: disable=broad-except  # Some backends do not implement it.
    stats = None
  if stats and "bytes_limit" in stats:
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
  if device.platform == "cpu":
    return host_available_bytes()
  return None


def check_fits_on_device(nbytes: int, device) -> None:
  """Raises a one-line UserError when `nbytes` of data do not fit in `device`'s free memory.

  Does nothing when the device does not report its memory (the put will tell then).
  """
  available = available_bytes(device)
  if available is not None and nbytes > available:
    raise UserError(f"the data set needs {nbytes / GIB:.2f} GiB on {device} but only "
                    f"{available / GIB:.2f} GiB is free there: set --config.data_on_device=False "
                    f"to stream batches from the host, or use a smaller data set")
