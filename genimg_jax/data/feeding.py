"""What each dispatch trains on: the device-resident set (`resident_feed`) or streamed batches
(`streamed_feed`, `config.data_on_device=False`), and the stream's position for checkpoints.

`Streamed` runs a background thread that takes the Grain iterator's next K steps (K from the
loop's dispatch plan), stacks them, puts them on the devices (the dispatch's `place`:
`placement.place_streamed`) and queues up to `depth` dispatches, so reading, decoding and the
host → device copy overlap the device's work. Each queued dispatch carries Grain's iterator
state after its last step; a checkpoint saves the state of the dispatches the loop has
consumed, not of those read ahead.
"""

import json
import queue
import threading

import numpy as np

from genimg_jax import sharding
from genimg_jax.data import placement
from genimg_jax.errors import UserError


class Position:
  """Grain's iterator state at the last consumed step ({"next_index": step}), shaped for Grain's
  Orbax handler (grain.checkpoint.CheckpointSave / CheckpointRestore: get_state → bytes)."""

  def __init__(self, state: dict | None = None):
    self.state = state

  def get_state(self) -> bytes:
    return json.dumps(self.state).encode()

  def set_state(self, state: bytes) -> None:
    self.state = json.loads(state)

  def start_prefetch(self) -> None:  # Called by Grain's handler after a restore: nothing to do.
    pass


class Resident:
  """The whole training split on the devices: every dispatch gets the same placed data."""

  position = None  # Nothing to checkpoint: the state's step and data order say where it is.

  def __init__(self, data: dict):
    self._data = data

  def take(self, step: int, num: int) -> dict:
    del step, num
    return self._data

  def close(self) -> None:
    pass


_DONE = object()


class Streamed:
  """Dispatch after dispatch of streamed batches: `take(step, K)` → {"image": [K, ...], ...} on
  the devices, for steps [step, step + K) exactly as `plan(step)` cut them."""

  def __init__(self, dataset, position: dict, plan, end: int, place, depth: int = 2):
    self._iterator = iter(dataset)
    self._iterator.set_state(dict(position))
    self.position = Position(dict(position))
    self._plan, self._end, self._place = plan, end, place
    self._queue = queue.Queue(maxsize=depth)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, args=(position["next_index"],),
                                    name="genimg-feeder", daemon=True)
    self._thread.start()

  def _run(self, step: int) -> None:
    try:
      while step < self._end and not self._stop.is_set():
        num = self._plan(step)
        rows = [next(self._iterator) for _ in range(num)]  # Steps [step, step + num).
        stacked = {name: np.stack([r[name] for r in rows]) for name in rows[0]}  # [K, M, ...]
        self._put((step, num, self._place(stacked), self._iterator.get_state()))
        step += num
      self._put(_DONE)
    except BaseException as e:  # pylint: disable=broad-except  # Re-raised in the loop's thread.
      self._put(e)

  def _put(self, item) -> None:
    while not self._stop.is_set():
      try:
        self._queue.put(item, timeout=0.1)
        return
      except queue.Full:
        continue

  def take(self, step: int, num: int) -> dict:
    """The placed batches of steps [step, step + num); raises what the reader raised."""
    item = self._queue.get()
    if isinstance(item, BaseException):
      raise item
    if item is _DONE or item[:2] != (step, num):
      raise RuntimeError(f"streamed data out of step: wanted steps {step}+{num}, got "
                         f"{'the end' if item is _DONE else item[:2]}")
    self.position.state = dict(item[3])
    return item[2]

  def close(self) -> None:
    """Stops the reader thread (it may be blocked on a full queue)."""
    self._stop.set()
    self._thread.join(timeout=10)


def start_position(saved: dict | None, step: int) -> dict:
  """Where the stream starts: the checkpoint's Grain state, or step `step` when the checkpoint
  has none (fresh runs; checkpoints of device-resident runs: the same batches)."""
  if saved is None:
    return {"next_index": step}
  if saved.get("next_index") != step:
    raise UserError(f"the checkpoint of step {step} holds a data stream position "
                    f"{saved.get('next_index')}: it is inconsistent; move it away to resume "
                    f"from an earlier checkpoint")
  return saved


def resident_feed(train_data, mesh, num_shards: int) -> Resident:
  """The training split on the devices (each device its shard), checked to fit first."""
  nbytes = (train_data.images.nbytes + train_data.labels.nbytes) // num_shards
  for device in mesh.local_devices:
    placement.check_fits_on_device(nbytes, device)
  return Resident(placement.place_resident(train_data.images, train_data.labels, mesh,
                                           num_shards))


def streamed_feed(split, run_key, layout, mesh, step: int, saved_position: dict | None, plan,
                  num_steps: int, workers: int, read_ahead: int, place) -> Streamed:
  """The same batches as `resident_feed`'s draws, read by Grain from `split` on the host
  (data/streaming.py) from step `step` on, and placed by `place` dispatch by dispatch.

  run_key: the state's run key (host array); plan(step) → the next dispatch's step count.
  """
  from genimg_jax.data import streaming  # pylint: disable=import-outside-toplevel  # Grain.

  indices = streaming.StepIndices(streaming.EpochOrders(run_key, layout), layout,
                                  sharding.local_device_ids(mesh))
  dataset = streaming.step_dataset(split, indices, num_steps, workers, read_ahead)
  return Streamed(dataset, start_position(saved_position, step), plan, num_steps, place)
