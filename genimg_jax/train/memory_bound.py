"""A bound on what the runs axis may allocate: R runs that cannot fit in a device's memory are
refused in one line, naming the estimate and the limit, before anything per run is built.

The estimate costs the same for any R: one run's state by `jax.eval_shape` of the family's
init (× the runs a device holds), and the step's working memory by XLA's memory analysis of
the runs program compiled for a run or two per device (under `vmap` its temporaries scale
with the runs; looped runs share one run's). The limit is `config.memory_limit_gib` per
device (0: the device's free memory) less the resident training data.
"""

import dataclasses

import jax
import numpy as np

from genimg_jax import sharding
from genimg_jax.data import placement
from genimg_jax.errors import UserError
from genimg_jax.train import compiled, runs, sweep

GIB = 2**30
UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
BOOKKEEPING_BYTES = 1 + 4  # A run's RunsState entries: alive (bool), frozen_at (int32).


def human(nbytes: float) -> str:
  """Bytes in binary units: '14.2 MiB'."""
  unit = 0
  while abs(nbytes) >= 1024 and unit < len(UNITS) - 1:
    nbytes, unit = nbytes / 1024, unit + 1
  return f"{nbytes:.0f} {UNITS[unit]}" if unit == 0 else f"{nbytes:.1f} {UNITS[unit]}"


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Bytes one device needs for its runs: what each run keeps, and the step's working memory."""

  num_runs: int  # R, every run of the program.
  runs_per_device: int  # R, or R / D when the runs are spread over D devices.
  state_per_run: int  # One run's family state, RunsState entries and a dispatch's metrics.
  step_one_run: int  # XLA's temporaries of one run's step (0: the backend does not say).
  step_per_run: bool  # Vmapped runs: the step's temporaries are batched over the runs.

  @property
  def state_bytes(self) -> int:
    return self.runs_per_device * self.state_per_run + 4  # + the program's int32 step.

  @property
  def step_bytes(self) -> int:
    return self.step_one_run * (self.runs_per_device if self.step_per_run else 1)

  @property
  def total(self) -> int:
    return self.state_bytes + self.step_bytes


def one_run_state(family, num_examples: int, image_shape):
  """One run's family state, abstract (shapes and dtypes: nothing is computed)."""
  return jax.eval_shape(lambda: family.init_state(jax.random.PRNGKey(0), num_examples,
                                                  image_shape))


def tree_bytes(tree) -> int:
  """Sum of the leaves' sizes in bytes (arrays or ShapeDtypeStructs)."""
  return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize
             for x in jax.tree_util.tree_leaves(tree))


def few_runs(state, keys, count: int, mesh, spread: bool) -> runs.RunsState:
  """An abstract RunsState of `count` runs shaped as `state` (one run's, abstract), laid out
  on `mesh` as training lays it out."""
  lead = lambda shape, dtype: jax.ShapeDtypeStruct((count, *shape), dtype)
  abstract = runs.RunsState(
      step=jax.ShapeDtypeStruct((), np.int32),
      runs=jax.tree_util.tree_map(lambda x: lead(x.shape, x.dtype), state),
      hparams={key: lead((), np.float32) for key in keys}, alive=lead((), np.bool_),
      frozen_at=lead((), np.int32))
  shardings = (runs.state_shardings(abstract, mesh, sharding.DATA_AXIS) if spread
               else jax.tree_util.tree_map(lambda _: sharding.replicated(mesh), abstract))
  return jax.tree_util.tree_map(
      lambda x, where: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=where), abstract,
      shardings)


def step_analysis(family, config, mesh, layout, train_data, state, keys, spread: bool
                  ) -> tuple[int, int]:
  """(a device's temporaries of one run's step, bytes of one run's metrics of one step), from
  the runs program itself compiled for K = 1 and one run per device (two when looped: a loop
  of one run would be compiled away; its temporaries are those of any R). The temporaries
  are 0 when the backend gives no memory analysis. `state`: one run's, abstract; `keys`: the
  swept keys."""
  count = mesh.devices.size if spread else 1 if not runs.use_loop(config) else 2
  split = sharding.batch_sharded(mesh)
  rows = (layout.num_devices, layout.shard_size)  # As placement.place_resident lays them out.
  data = {"image": jax.ShapeDtypeStruct((*rows, *train_data.image_shape),
                                        train_data.images.dtype, sharding=split),
          "label": jax.ShapeDtypeStruct(rows, train_data.labels.dtype, sharding=split)}
  lowered = compiled.build(family, config, mesh, layout).function(1).lower(
      few_runs(state, keys, count, mesh, spread), data)
  metrics = tree_bytes(lowered.out_info[1]) // count
  try:
    analysis = lowered.compile().memory_analysis()
  except Exception:  # pylint: disable=broad-except  # Not every backend implements it.
    analysis = None
  return (0 if analysis is None else int(analysis.temp_size_in_bytes)), metrics


def estimate(family, config, mesh, layout, train_data) -> Estimate:
  """The runs axis's bytes per device, from one run's state and a few runs' step (nothing of
  R runs is built or traced)."""
  plan = sweep.plan(config)
  devices = mesh.devices.size
  spread = runs.spread_over_devices(config, devices, layout.num_shards)
  state = one_run_state(family, layout.shard_size * layout.num_shards, train_data.image_shape)
  step, metrics = step_analysis(family, config, mesh, layout, train_data, state, plan.keys,
                                spread)
  per_run = (tree_bytes(state) + BOOKKEEPING_BYTES + 4 * len(plan.keys)  # + hparams float32.
             + metrics * config.steps_per_dispatch)
  return Estimate(plan.size, plan.size // devices if spread else plan.size, per_run, step,
                  not runs.use_loop(config))


def limit(config, device) -> tuple[int | None, str]:
  """(bytes `device` may hold, how the message names them): memory_limit_gib, else its free
  memory (None: the device does not say)."""
  if config.memory_limit_gib > 0:
    return int(config.memory_limit_gib * GIB), (
        f"the limit on {device} is {config.memory_limit_gib:g} GiB (memory_limit_gib)")
  free = placement.available_bytes(device)
  return free, f"{human(free or 0)} is free on {device}"


def describe(e: Estimate, model: str) -> str:
  """'1,000 runs of gan_seed need ≈ 14.2 GiB (14.2 MiB per run: state 4.1 MiB + step
  10.1 MiB)', per device when the runs are spread over the devices."""
  where = (f" per device ({e.runs_per_device:,} on each)" if e.runs_per_device < e.num_runs
           else "")
  if e.step_per_run:
    parts = (f"{human(e.state_per_run + e.step_one_run)} per run: state "
             f"{human(e.state_per_run)} + step {human(e.step_one_run)}")
  else:
    parts = (f"state {human(e.state_per_run)} per run + step {human(e.step_one_run)}, "
             f"shared by the looped runs")
  runs_of = f"{e.num_runs:,} runs of {model} need" if e.num_runs > 1 else f"1 run of {model} needs"
  return f"{runs_of} ≈ {human(e.total)}{where} ({parts})"


def check_runs_fit(config, family, mesh, layout, train_data) -> None:
  """One-line UserError when the runs axis cannot fit on a device of this process: the
  estimate against the limit less the device's shard of `train_data` (the host split, placed
  on the devices later). Nothing without a runs axis, or when neither the config nor the
  device gives a limit."""
  if not config.memory_limit_gib >= 0:
    raise UserError(f"config.memory_limit_gib must be zero (the device's free memory) or a "
                    f"positive number of GiB, got {config.memory_limit_gib}")
  if not sweep.uses_runs_axis(config):
    return
  bounds = [(device, *limit(config, device)) for device in mesh.local_devices]
  bounds = [b for b in bounds if b[1] is not None]
  if not bounds:
    return
  _, nbytes, named = min(bounds, key=lambda b: b[1])
  resident_bytes = ((train_data.images.nbytes + train_data.labels.nbytes) // layout.num_shards
                    if config.data_on_device else 0)
  need = estimate(family, config, mesh, layout, train_data)
  if need.total > nbytes - resident_bytes:
    data = f", less {human(resident_bytes)} of resident data" if resident_bytes else ""
    raise UserError(f"{describe(need, config.model)} but {named}{data}: lower num_runs or "
                    f"the sweep's size")
