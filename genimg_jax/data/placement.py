"""Putting training data on the devices: the whole split (each device its shard) or each
dispatch's streamed batches, laid out as the compiled step reads them (train/compiled.py).

Training keeps the whole data set on the device by default; a set that does not fit stops with
one line giving both sizes and the way out (`data_on_device=False`: stream batches), not with an
allocator error deep inside `jax.device_put`.
"""

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genimg_jax import sharding
from genimg_jax.data.batching import Layout
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


def place_resident(images: np.ndarray, labels: np.ndarray, mesh: Mesh, num_shards: int = 1) -> dict:
  """{"image": uint8 [D, N_s, H, W, C], "label": int32 [D, N_s]}: device d holds its shard.

  Shard s is examples [s·N_s, (s+1)·N_s), N_s = N // num_shards; device d of D holds shard
  d // (D / num_shards). Only this process's devices are written, from its shards' rows (the
  other rows of `images` may be absent: pass zeros or a view, they are not read).
  """
  num_devices, shard_size = mesh.devices.size, len(labels) // num_shards
  per_shard = num_devices // num_shards
  placed = {}
  for name, array in (("image", images), ("label", labels)):
    blocks = []
    for index, device in enumerate(mesh.devices.flat):
      if device.process_index == jax.process_index():
        start = (index // per_shard) * shard_size
        blocks.append(jax.device_put(np.asarray(array[None, start:start + shard_size]), device))
    placed[name] = jax.make_array_from_single_device_arrays(
        (num_devices, shard_size, *array.shape[1:]), sharding.batch_sharded(mesh), blocks)
  return placed


def place_streamed(rows: dict, mesh: Mesh, layout: Layout, batches_per_step: int,
                   per_device_axis: bool) -> dict:
  """This process's host rows of K steps {[K, L · n · r, ...]} (L local devices in mesh order,
  data/streaming.py; n = batches_per_step, r rows per device and batch) → device arrays:
  global [K, (n,) B, ...] with the batch axis split over the mesh (jit), or, with
  `per_device_axis` (pmap), [D, K, (n,) B / D, ...], one leading row per device."""
  n = batches_per_step
  r = layout.rows_per_device // n  # The layout counts every batch of a step.
  inner = (n, r) if n > 1 else (r,)
  devices = [mesh.devices.flat[d] for d in sharding.local_device_ids(mesh)]
  placed = {}
  for name, x in rows.items():
    x = x.reshape((x.shape[0], len(devices), *inner, *x.shape[2:]))
    blocks = [np.ascontiguousarray(x[:, i]) for i in range(len(devices))]  # [K, (n,) r, ...]
    if per_device_axis:
      shape, spec = (mesh.devices.size, *blocks[0].shape), sharding.batch_sharded(mesh)
      blocks = [b[None] for b in blocks]
    else:
      axis = len(inner)  # The batch axis: after K (and n).
      shape = (*blocks[0].shape[:axis], layout.batch_size // n, *blocks[0].shape[axis + 1:])
      spec = NamedSharding(mesh, P(*([None] * axis), sharding.DATA_AXIS))
    placed[name] = jax.make_array_from_single_device_arrays(
        shape, spec, [jax.device_put(b, device) for b, device in zip(blocks, devices)])
  return placed
