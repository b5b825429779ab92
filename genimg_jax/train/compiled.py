"""The compiled update: K training steps per dispatch via `lax.scan`, data parallel.

Two paths with one contract, `(state, data, K) -> (state, metrics [K])`, the state donated:
* `MultiStep` (default, `config.parallel="jit"`): `state` is replicated over a 1-D device mesh
  ("data"), each device draws its rows of the batch (a `shard_map`), the step sees the global
  batch and XLA's SPMD partitioner inserts the gradient all-reduce.
* `PmapMultiStep` (`config.parallel="pmap"`): the same scan under `jax.pmap` over the mesh's
  devices; the family's step (built with `axis_name=DATA_AXIS`) sees this device's rows and
  `lax.pmean`s gradients and metrics (train/parallel.py). The state enters unmapped
  (`in_axes=None`) and leaves unmapped (`out_axes=None`, equal on every device after the
  pmean), so outside the call it is the same replicated pytree as under jit: checkpoints,
  samples and saves do not know which path ran.
Data: `place_data` puts every device's shard on it, a global array [D, N_s, ...] split over
the mesh's first axis (train/batching.py, "Sharded draws"). One jitted function per distinct K.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genimg_jax.train import batching

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over the given (default: every process's) devices."""
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the mesh."""
  return NamedSharding(mesh, P(DATA_AXIS))


def step_key(state) -> jnp.ndarray:
  """The key of update number `state.step`: fold_in(step base key, step)."""
  step_base, _ = batching.split_run_key(state.rng)
  return jax.random.fold_in(step_base, state.step)


def place_data(images: np.ndarray, labels: np.ndarray, mesh: Mesh, num_shards: int = 1) -> dict:
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
        (num_devices, shard_size, *array.shape[1:]), batch_sharded(mesh), blocks)
  return placed


class MultiStep:
  """`(state, data) -> (state, metrics [K])`: K updates of `train_step` in one jitted call.

  A step consumes `batches_per_step` batches of `batch_size` (e.g. a GAN's n_critic D updates):
  the draw takes batches_per_step · batch_size examples and each device splits its rows into
  [batches_per_step, rows, ...], so `train_step` gets [batches_per_step, batch_size, ...]
  with the batch axis split over the devices (unstacked [batch_size, ...] when it is 1).
  """

  def __init__(self, train_step, batch_size: int, mesh: Mesh, num_shards: int = 1,
               batches_per_step: int = 1):
    self._train_step = train_step
    self._batch_size = batch_size
    self._num_shards = num_shards
    self._batches_per_step = batches_per_step
    self._mesh = mesh
    self._compiled = {}  # K → compiled function.

  def _layout_of(self, data) -> batching.Layout:
    """The draw's sizes, from placed data [D, N_s, ...] (or, inside pmap, [N_s, ...])."""
    shard_size = data["label"].shape[-1]
    return batching.Layout(self._batch_size * self._batches_per_step, self._mesh.devices.size,
                           self._num_shards, shard_size)

  def _stack(self, rows: dict) -> dict:
    """This device's rows [n · r, ...] → [n, r, ...] (n = batches_per_step > 1)."""
    n = self._batches_per_step
    if n == 1:
      return rows
    return jax.tree_util.tree_map(lambda x: x.reshape((n, x.shape[0] // n, *x.shape[1:])), rows)

  def _draw(self, order, position, data):
    """The global batch [B, ...], split over the mesh: each device gathers its own rows."""
    def rows(order, position, local):  # local: this device's [1, N_s, ...].
      device = jax.lax.axis_index(DATA_AXIS)
      local = jax.tree_util.tree_map(lambda x: x[0], local)
      return self._stack(batching.device_rows(order, position, local, device,
                                              self._layout_of(data)))

    batch_axis = P(DATA_AXIS) if self._batches_per_step == 1 else P(None, DATA_AXIS)
    return jax.shard_map(rows, mesh=self._mesh, in_specs=(P(), P(), P(DATA_AXIS)),
                         out_specs=batch_axis)(order, position, data)

  def _scan(self, state, data, num_steps: int):
    def body(state, _):
      state, position = batching.advance_order(state, self._layout_of(data))
      return self._train_step(state, self._draw(state.data_order, position, data),
                              step_key(state))

    return jax.lax.scan(body, state, None, length=num_steps)

  def _compile(self, num_steps: int):
    return jax.jit(functools.partial(self._scan, num_steps=num_steps), donate_argnums=0)

  def function(self, num_steps: int):
    """The compiled K-step function (compiled on first call for each K)."""
    if num_steps not in self._compiled:
      self._compiled[num_steps] = self._compile(num_steps)
    return self._compiled[num_steps]

  def __call__(self, state, data, num_steps: int):
    return self.function(num_steps)(state, data)


class PmapMultiStep(MultiStep):
  """The same contract under `jax.pmap`; `train_step` must pmean (family axis_name=DATA_AXIS)."""

  def _scan(self, state, data, num_steps: int):
    layout = self._layout_of(data)

    def body(state, _):  # Per device; data: this device's shard {[N_s, ...]}.
      state, position = batching.advance_order(state, layout)
      batch = self._stack(batching.device_rows(state.data_order, position, data,
                                               jax.lax.axis_index(DATA_AXIS), layout))
      return self._train_step(state, batch, step_key(state))

    return jax.lax.scan(body, state, None, length=num_steps)

  def _compile(self, num_steps: int):
    return jax.pmap(functools.partial(self._scan, num_steps=num_steps), axis_name=DATA_AXIS,
                    in_axes=(None, 0), out_axes=None, donate_argnums=0,
                    devices=list(self._mesh.devices.flat))


def local_device_ids(mesh: Mesh) -> list[int]:
  """Mesh positions (0 … D − 1) of this process's devices, in mesh order."""
  return [d for d, device in enumerate(mesh.devices.flat)
          if device.process_index == jax.process_index()]


class StreamedMultiStep(MultiStep):
  """The same contract with host-fed batches (`config.data_on_device=False`, data/streaming.py):
  `data` holds K steps' batches {"image": uint8 [K, (n,) B, H, W, C], "label": int32 [K, (n,) B]}
  (n = batches_per_step, the axis only when n > 1), the batch axis split over the mesh, scanned
  as `xs` into the same `train_step` with the same step keys. The state's data order advances
  as in `MultiStep` (the streamed rows are the rows it names), so a checkpoint resumes under
  either path.
  """

  def __init__(self, train_step, batch_size: int, mesh: Mesh, num_shards: int = 1,
               batches_per_step: int = 1, shard_size: int = 0):
    super().__init__(train_step, batch_size, mesh, num_shards, batches_per_step)
    self.layout = batching.Layout(batch_size * batches_per_step, mesh.devices.size, num_shards,
                                  shard_size)

  def _batch_spec(self) -> P:
    return P(None, DATA_AXIS) if self._batches_per_step == 1 else P(None, None, DATA_AXIS)

  def _blocks(self, rows: dict):
    """Host rows {[K, L · n · r, ...]} (L local devices in mesh order, data/streaming.py) →
    per name, each local device's [K, (n,) r, ...]."""
    n = self._batches_per_step
    r = self.layout.rows_per_device // n  # The layout counts every batch of a step.
    inner = (n, r) if n > 1 else (r,)
    devices = [self._mesh.devices.flat[d] for d in local_device_ids(self._mesh)]
    for name, x in rows.items():
      x = x.reshape((x.shape[0], len(devices), *inner, *x.shape[2:]))
      yield name, [(device, x[:, i]) for i, device in enumerate(devices)]

  def place(self, rows: dict) -> dict:
    """This process's host rows of K steps → global arrays [K, (n,) B, ...] on the mesh."""
    placed, axis = {}, 1 if self._batches_per_step == 1 else 2  # The batch axis.
    for name, blocks in self._blocks(rows):
      block = blocks[0][1].shape  # [K, (n,) r, ...]
      shape = (*block[:axis], self._batch_size, *block[axis + 1:])
      placed[name] = jax.make_array_from_single_device_arrays(
          shape, NamedSharding(self._mesh, self._batch_spec()),
          [jax.device_put(np.ascontiguousarray(b), device) for device, b in blocks])
    return placed

  def _scan(self, state, data, num_steps: int):
    def body(state, batch):
      state, _ = batching.advance_order(state, self.layout)
      return self._train_step(state, batch, step_key(state))

    return jax.lax.scan(body, state, data, length=num_steps)


class StreamedPmapMultiStep(StreamedMultiStep):
  """`StreamedMultiStep` under `jax.pmap`: data [D, K, (n,) B / D, ...], one row per device."""

  def place(self, rows: dict) -> dict:
    placed = {}
    for name, blocks in self._blocks(rows):
      shape = (self._mesh.devices.size, *blocks[0][1].shape)
      placed[name] = jax.make_array_from_single_device_arrays(
          shape, batch_sharded(self._mesh),
          [jax.device_put(np.ascontiguousarray(b[None]), device) for device, b in blocks])
    return placed

  _compile = PmapMultiStep._compile
