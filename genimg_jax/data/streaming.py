"""Training batches streamed from the host with Grain (`config.data_on_device=False`): for
training sets larger than device memory.

The stream gives exactly the batches the device-resident path draws (data/batching.py): element
t of a Grain `MapDataset.range(num_steps)` is this process's rows of step t's global batch,
read from a random-access split (an in-memory array, or a TFDS array_record split record by
record) at the indices `batching.device_rows` would gather on the devices. Epoch e's order is
`batching.shard_orders(data key, e)`: the same per-epoch permutation, computed by jax.random on
the host's CPU device (threefry and a stable sort give the same numbers on every backend). Each
process reads only the records of its own shards. Grain reads `workers` steps ahead in threads;
its iterator state ({"next_index": step}) goes into the run's checkpoints (data/feeding.py).
"""

import collections
import threading

import grain
import jax
import numpy as np

from genimg_jax.data import embedded, load_dataset
from genimg_jax.data import batching


class ArraySplit:
  """A split already in host memory (the embedded set): images uint8 [N, H, W, C], labels [N]."""

  def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int):
    self._images, self._labels = images, labels
    self.num_examples, self.image_shape = len(labels), tuple(images.shape[1:])
    self.num_classes = num_classes

  def read(self, indices) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [M, H, W, C], labels int32 [M]) of rows `indices`."""
    return self._images[indices], self._labels[indices]


def open_split(name: str, split: str, data_dir: str | None = None, image_size: int = 0):
  """A split to stream from: the embedded set in memory, any other set read record by record
  from its TFDS array_record files (only the records asked for are read and decoded)."""
  if name == embedded.NAME:
    data = load_dataset(name, split, data_dir, image_size=image_size)
    return ArraySplit(data.images, data.labels, data.num_classes)
  from genimg_jax.data import tfds_source  # Imported lazily: TFDS is slow to import.

  return tfds_source.RandomAccessSplit(name, split, data_dir, image_size)


class EpochOrders:
  """Epoch e → `batching.shard_orders(data key, e, layout)` as a host array int32 [S · N_s];
  computed once per epoch on the CPU device, shared by Grain's reader threads."""

  def __init__(self, run_key, layout: batching.Layout, keep: int = 2):
    cpu = jax.local_devices(backend="cpu")[0]  # This process's own: no collective.
    self._data_base = jax.device_put(batching.split_run_key(np.asarray(run_key))[1], cpu)
    self._orders = jax.jit(lambda key, epoch: batching.shard_orders(key, epoch, layout))
    self._cache, self._keep = collections.OrderedDict(), keep
    self._lock = threading.Lock()

  def __call__(self, epoch: int) -> np.ndarray:
    with self._lock:  # Least recently used out: reader threads straddle an epoch's end.
      if epoch not in self._cache:
        self._cache[epoch] = np.asarray(self._orders(self._data_base, np.int32(epoch)))
        while len(self._cache) > self._keep:
          self._cache.popitem(last=False)
      self._cache.move_to_end(epoch)
      return self._cache[epoch]


class StepIndices:
  """Step t → the records this process's devices use at step t: int64 [M], device after device
  (mesh order), each device's rows_per_device rows in `batching.device_rows`'s order.

  M = (this process's devices) · layout.batch_size / D, where layout.batch_size is every batch of
  a step together (batches_per_step · batch_size).
  """

  def __init__(self, orders: EpochOrders, layout: batching.Layout, device_ids):
    self._orders, self._layout, self._device_ids = orders, layout, tuple(device_ids)
    self.steps_per_epoch = layout.shard_size // (layout.batch_size // layout.num_shards)

  @property
  def rows_per_step(self) -> int:
    return len(self._device_ids) * self._layout.rows_per_device

  def __call__(self, step: int) -> np.ndarray:
    layout = self._layout
    epoch, position = divmod(int(step), self.steps_per_epoch)
    order = self._orders(epoch)
    per_shard, rows = layout.num_devices // layout.num_shards, layout.rows_per_device
    parts = []
    for device in self._device_ids:  # Mirrors batching.device_rows.
      shard, part = divmod(device, per_shard)
      start = (shard * layout.shard_size + position * (layout.batch_size // layout.num_shards)
               + part * rows)
      parts.append(shard * layout.shard_size + order[start:start + rows].astype(np.int64))
    return np.concatenate(parts)


class StepReader:
  """Grain's map: step t → {"image": uint8 [M, H, W, C], "label": int32 [M]} (StepIndices)."""

  def __init__(self, split, indices: StepIndices):
    self._split, self._indices = split, indices

  def __call__(self, step: int) -> dict:
    images, labels = self._split.read(self._indices(step))
    return {"image": np.asarray(images, np.uint8), "label": np.asarray(labels, np.int32)}


def step_dataset(split, indices: StepIndices, num_steps: int, workers: int,
                 buffer: int) -> grain.IterDataset:
  """Steps 0 … num_steps − 1 as a Grain IterDataset read by `workers` threads, up to `buffer`
  steps ahead (workers 0: read in the caller's thread when asked)."""
  dataset = grain.MapDataset.range(num_steps).map(StepReader(split, indices))
  options = grain.ReadOptions(num_threads=workers, prefetch_buffer_size=max(buffer, workers)
                              if workers else 0)
  return dataset.to_iter_dataset(options)
