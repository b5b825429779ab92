"""The compiled update: K training steps per dispatch via `lax.scan`, data parallel.

`build(family, config, mesh, layout)` returns the one `MultiStep` of a run, with the contract
`(state, data, K) -> (state, metrics [K])`, the state donated. Two choices make it, each a
small part below:
* where a step's batch comes from: drawn inside the step from the device-resident split
  (`config.data_on_device`, data [D, N_s, ...] from `placement.place_resident`; the rows are
  data/batching.py's draw), or scanned in from host-fed batches (streamed, data [K, ...] from
  `placement.place_streamed`, the same rows read by data/streaming.py);
* how the scan is compiled: `jax.jit` over the mesh (`config.parallel="jit"`, the default:
  the state replicated, each device draws its rows in a `shard_map`, the step sees the global
  batch and XLA's SPMD partitioner inserts the gradient all-reduce), or `jax.pmap` over the
  mesh's devices (`"pmap"`: the family's step, built with `axis_name=DATA_AXIS`, sees this
  device's rows and `lax.pmean`s gradients and metrics, train/parallel.py). Under pmap the
  state enters and leaves unmapped (equal on every device after the pmean), so outside the
  call it is the same replicated pytree as under jit: checkpoints, samples and saves do not
  know which path ran.
Either way the state's data order advances by the same rule, so a checkpoint resumes under
any of the four combinations. One compiled function per distinct K.

With a runs axis (`config.num_runs` > 1 or a sweep, train/runs.py) the one-run step is
vmapped over the runs, or looped over them in one traced body, inside the same scan: the state
is a `runs.RunsState`, the placed data are shared, and each device's step trains every run on
its rows.
"""

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P

from genimg_jax.data import batching, binarize, placement
from genimg_jax.sharding import DATA_AXIS
from genimg_jax.train import parallel, runs, sweep

BINARIZE_STREAM = 1 << 20  # fold_in(step key, ·) of the dynamic binarisation (families split
# the step key itself, so a folded-in stream is independent of theirs).


def step_key(state) -> jnp.ndarray:
  """The key of update number `state.step`: fold_in(step base key, step)."""
  step_base, _ = batching.split_run_key(state.rng)
  return jax.random.fold_in(step_base, state.step)


def _resident_step(train_step, layout: batching.Layout, batches_per_step: int, mesh: Mesh,
                   per_device: bool):
  """(state, placed split) → one update on rows drawn on the devices: under jit each device
  gathers its rows in a shard_map (data [D, N_s, ...]); under pmap (`per_device`) the step
  already runs per device (data: this device's [N_s, ...])."""
  def rows(order, position, local, device):  # local: this device's shard {[N_s, ...]}.
    return batching.stack_batches(batching.device_rows(order, position, local, device, layout),
                                  batches_per_step)

  def draw(order, position, data):
    if per_device:
      return rows(order, position, data, jax.lax.axis_index(DATA_AXIS))
    local_rows = lambda order, position, local: rows(
        order, position, jax.tree_util.tree_map(lambda x: x[0], local),
        jax.lax.axis_index(DATA_AXIS))
    batch_axis = P(DATA_AXIS) if batches_per_step == 1 else P(None, DATA_AXIS)
    return jax.shard_map(local_rows, mesh=mesh, in_specs=(P(), P(), P(DATA_AXIS)),
                         out_specs=batch_axis)(order, position, data)

  def step(state, data, position, hp):  # state.data_order: already this epoch's.
    return train_step(state, draw(state.data_order, position, data), step_key(state), hp)

  return step


def _spread_draw(layout: batching.Layout, batches_per_step: int, mesh: Mesh):
  """(orders [R, N] split over the devices, position, placed split) → every run's batch
  [R, (n,) B, ...]: each device draws whole batches for its own runs from its copy of the
  split (one shard), so spreading the runs needs no cross-device traffic."""
  whole = dataclasses.replace(layout, num_devices=1)  # Each device: every row of a batch.

  def local(orders, position, data):  # orders [R / D, N]; data: this device's [1, N, ...].
    data = jax.tree_util.tree_map(lambda x: x[0], data)
    return jax.vmap(lambda order: batching.stack_batches(
        batching.device_rows(order, position, data, 0, whole), batches_per_step))(orders)

  return lambda orders, position, data: jax.shard_map(
      local, mesh=mesh, in_specs=(P(DATA_AXIS), P(), P(DATA_AXIS)),
      out_specs=P(DATA_AXIS))(orders, position, data)


def _streamed_step(train_step):
  """(state, this step's fed batch, …) → one update."""
  def step(state, batch, position, hp):
    del position  # The host read the rows.
    return train_step(state, batch, step_key(state), hp)

  return step


def _one_run(step, layout: batching.Layout):
  """(state, data, position, hp) → (state, data) → one update; the data order advances."""
  def one(state, data):
    state, position = batching.advance_order(state, layout)
    return step(state, data, position, {})

  return one


def _scan(step: Callable, resident: bool):
  """(state, data, num_steps) → lax.scan of `step` num_steps times: over the same resident
  data each step, or over the leading [K] axis of streamed batches."""
  def scan(state, data, num_steps: int):
    if resident:
      return jax.lax.scan(lambda s, _: step(s, data), state, None, length=num_steps)
    return jax.lax.scan(step, state, data, length=num_steps)

  return scan


def _jit(scan, num_steps: int, mesh: Mesh):
  del mesh  # Same signature as _pmap; under jit the shardings travel with the arrays.
  return jax.jit(functools.partial(scan, num_steps=num_steps), donate_argnums=0)


def _pmap(scan, num_steps: int, mesh: Mesh):
  return jax.pmap(functools.partial(scan, num_steps=num_steps), axis_name=DATA_AXIS,
                  in_axes=(None, 0), out_axes=None, donate_argnums=0,
                  devices=list(mesh.devices.flat))


@dataclasses.dataclass
class MultiStep:
  """`(state, data, K) -> (state, metrics [K])`: K updates in one compiled call.

  `place` (streamed runs only, else None) turns this process's host rows of K steps into the
  `data` this function takes (data/placement.py).
  """

  scan: Callable  # (state, data, num_steps) → (state, metrics), not yet compiled.
  compiler: Callable  # (scan, num_steps, mesh) → the compiled K-step function.
  mesh: Mesh
  place: Callable | None = None
  spread: bool = False  # The runs are split over the devices (runs.state_shardings).
  _compiled: dict = dataclasses.field(default_factory=dict, init=False, repr=False)  # K → fn.

  def function(self, num_steps: int):
    """The compiled K-step function (compiled on first call for each K)."""
    if num_steps not in self._compiled:
      self._compiled[num_steps] = self.compiler(self.scan, num_steps, self.mesh)
    return self._compiled[num_steps]

  def __call__(self, state, data, num_steps: int):
    return self.function(num_steps)(state, data)


def layout_for(family, config, mesh: Mesh, num_examples: int, num_shards: int = 1
               ) -> batching.Layout:
  """The draw's sizes for a split of `num_examples` cut into `num_shards` shards: every batch of
  a step together (config.batch_size · family.batches_per_step) over the mesh's devices."""
  return batching.Layout(config.batch_size * family.batches_per_step, mesh.devices.size,
                         num_shards, num_examples // num_shards)


def build(family, config, mesh: Mesh, layout: batching.Layout) -> MultiStep:
  """The run's K-step function for `config.data_on_device` × `config.parallel`.

  layout: the draw's sizes (`layout_for`).
  """
  pmap = config.parallel == "pmap"
  family = dataclasses.replace(family, axis_name=DATA_AXIS) if pmap else family
  def train_step(state, batch, key, hp):
    if config.binarize == "dynamic":  # A fresh binary draw of this step's real images.
      draw_key = parallel.device_key(jax.random.fold_in(key, BINARIZE_STREAM), family.axis_name)
      batch = {**batch, "image": binarize.dynamic(batch["image"], draw_key)}
    return runs.with_hyperparameters(family, hp).train_step(state, batch, key)

  n = family.batches_per_step
  if config.data_on_device:
    step, place = _resident_step(train_step, layout, n, mesh, per_device=pmap), None
  else:
    step = _streamed_step(train_step)
    place = functools.partial(placement.place_streamed, mesh=mesh, layout=layout,
                              batches_per_step=n, per_device_axis=pmap)
  spread = runs.spread_over_devices(config, mesh.devices.size, layout.num_shards)
  if not sweep.uses_runs_axis(config):
    step = _one_run(step, layout)
  elif runs.use_loop(config):
    step = runs.looped(step, layout)
  elif spread:
    step = runs.vectorize(_streamed_step(train_step), layout, _spread_draw(layout, n, mesh))
  else:
    step = runs.vectorize(step, layout)
  return MultiStep(_scan(step, config.data_on_device), _pmap if pmap else _jit,
                   mesh, place, spread)
