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

Everything here is one run's: the step `(state, data) -> (state, metrics)` advances the epoch
order, draws the rows and updates. With a runs axis (`config.num_runs` > 1 or a sweep) that
step is wrapped from one place, train/runs.py: vmapped or looped over the runs in one traced
body (each run with its own swept values), and shard_mapped over the devices when the runs are
spread over them; the scan and the compilation are the same.
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


# Where a step's rows come from: (order, position, data) → the batch the step trains on.

def _mesh_rows(layout: batching.Layout, batches_per_step: int, mesh: Mesh):
  """Under jit: each device gathers its rows of the placed split [D, N_s, ...] in a shard_map;
  the step sees the global batch."""
  def local(order, position, shard):  # shard: this device's [1, N_s, ...].
    rows = batching.device_rows(order, position, jax.tree_util.tree_map(lambda x: x[0], shard),
                                jax.lax.axis_index(DATA_AXIS), layout)
    return batching.stack_batches(rows, batches_per_step)

  batch_axis = P(DATA_AXIS) if batches_per_step == 1 else P(None, DATA_AXIS)
  return jax.shard_map(local, mesh=mesh, in_specs=(P(), P(), P(DATA_AXIS)),
                       out_specs=batch_axis)


def _device_rows(layout: batching.Layout, batches_per_step: int):
  """Inside pmap: this device's rows of its shard [N_s, ...]."""
  return lambda order, position, shard: batching.stack_batches(
      batching.device_rows(order, position, shard, jax.lax.axis_index(DATA_AXIS), layout),
      batches_per_step)


def _whole_rows(layout: batching.Layout, batches_per_step: int):
  """A device that trains whole runs (the runs spread over the devices): every row of a batch,
  from its own copy of the split [1, N, ...], with no cross-device traffic."""
  whole = dataclasses.replace(layout, num_devices=1)
  return lambda order, position, copy: batching.stack_batches(
      batching.device_rows(order, position, jax.tree_util.tree_map(lambda x: x[0], copy), 0,
                           whole), batches_per_step)


def _fed_rows(order, position, batch):
  """Streamed: the host read this step's rows (data/streaming.py); the batch is fed."""
  del order, position
  return batch


def _one_run(family, rows, layout: batching.Layout, binarize_mode: str):
  """(state, data) → one update of one run: its epoch order advances, the rows at its position
  are drawn, and the family trains on them with the step's key."""
  def step(state, data):
    state, position = batching.advance_order(state, layout)
    batch, key = rows(state.data_order, position, data), step_key(state)
    if binarize_mode == "dynamic":  # A fresh binary draw of this step's real images.
      draw_key = parallel.device_key(jax.random.fold_in(key, BINARIZE_STREAM), family.axis_name)
      batch = {**batch, "image": binarize.dynamic(batch["image"], draw_key)}
    return family.train_step(state, batch, key)

  return step


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
  """The run's K-step function for `config.data_on_device` × `config.parallel`, over the runs
  axis when there is one (train/runs.py wraps the one-run step; nothing below knows of runs).

  layout: the draw's sizes (`layout_for`).
  """
  pmap = config.parallel == "pmap"
  family = dataclasses.replace(family, axis_name=DATA_AXIS) if pmap else family
  n = family.batches_per_step
  spread = runs.spread_over_devices(config, mesh.devices.size, layout.num_shards)
  place = None
  if not config.data_on_device:
    rows = _fed_rows
    place = functools.partial(placement.place_streamed, mesh=mesh, layout=layout,
                              batches_per_step=n, per_device_axis=pmap)
  elif spread:
    rows = _whole_rows(layout, n)
  elif pmap:
    rows = _device_rows(layout, n)
  else:
    rows = _mesh_rows(layout, n, mesh)
  one_run = lambda fam: _one_run(fam, rows, layout, config.binarize)
  if not sweep.uses_runs_axis(config):
    step = one_run(family)
  else:
    step = runs.over_runs(one_run, family, loop=runs.use_loop(config))
    if spread:
      step = runs.spread(step, mesh, DATA_AXIS)
  return MultiStep(_scan(step, config.data_on_device), _pmap if pmap else _jit,
                   mesh, place, spread)
