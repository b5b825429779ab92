"""The runs axis: R runs of one model trained by one compiled program (`jax.vmap`, or a loop
over the runs: `use_loop`).

Each run has its own seed (hence its own parameters, epoch order, latents, dropout masks, ε,
penalty α) and, under a sweep (train/sweep.py), its own hyper-parameter values, carried as
per-run arrays in the state and handed to the family as `family.hyper` inside the vmapped or
looped step, so one compilation serves every value. Run r's trajectory is the one a single run
with its seed and values would follow. The data are placed once and shared by every run.

A run whose update becomes non-finite is frozen at its last finite state (its updates masked
from then on, `alive[r]` False) while the others go on. Without a runs axis (num_runs = 1, no
sweep) none of this exists: the state is the family's own, as before.
"""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from genimg_jax.train import sweep


class RunsState(flax.struct.PyTreeNode):
  """The state of R runs; arrays only, so Orbax saves it as is."""

  step: jnp.ndarray  # int32 scalar: steps the program has taken (every live run's step).
  runs: Any  # The family's state, every leaf with a leading [R] axis.
  hparams: Any  # {swept key: float32 [R]}: each run's values ({} without a sweep).
  alive: jnp.ndarray  # bool [R]: False once the run's update became non-finite.
  frozen_at: jnp.ndarray  # int32 [R]: the step whose update was non-finite (0 while alive).


def run_keys(seed: int) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """A run's (training, sample-grid, evaluation) keys, all from its seed."""
  run_key, grid_key, eval_key = jax.random.split(jax.random.PRNGKey(seed), 3)
  return run_key, grid_key, eval_key


def all_finite(tree) -> jax.Array:
  """True when every floating-point leaf of `tree` is finite (one fused reduction)."""
  leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def with_hyperparameters(family, hp: dict):
  """`family` with `hp` (one run's swept values, traced) in place of its config's."""
  if not hp:
    return family
  return dataclasses.replace(family, hyper=tuple({**dict(family.hyper), **hp}.items()))


def init_state(init, plan: sweep.Plan) -> RunsState:
  """Every run's fresh state: `init(run key)` vmapped over the runs' seeds."""
  keys = jnp.stack([run_keys(seed)[0] for seed in plan.seeds])
  hparams = {key: jnp.asarray([point[key] for point in plan.points], jnp.float32)
             for key in plan.keys}
  return RunsState(step=jnp.zeros((), jnp.int32), runs=jax.vmap(init)(keys), hparams=hparams,
                   alive=jnp.ones((plan.size,), bool),
                   frozen_at=jnp.zeros((plan.size,), jnp.int32))


def select(state: RunsState, run: int):
  """Run `run`'s family state (its slice of every leaf)."""
  return jax.tree_util.tree_map(lambda x: x[run], state.runs)


def _where(keep, new, old):
  """Leaf by leaf: `new` where keep[r], else `old` (keep: bool [R])."""
  return jax.tree_util.tree_map(
      lambda n, o: jnp.where(keep.reshape(keep.shape + (1,) * (n.ndim - 1)), n, o), new, old)


def spread_over_devices(config, num_devices: int, num_shards: int) -> bool:
  """The runs themselves are split over the devices (each device trains R / D whole runs on
  its copy of the data: no cross-device traffic): under jit with vmapped runs, one data shard
  and R divisible by the D > 1 devices. Otherwise each run's batch is split as for one run."""
  return (sweep.uses_runs_axis(config) and config.parallel == "jit" and not use_loop(config)
          and num_devices > 1 and num_shards == 1 and sweep.plan(config).size % num_devices == 0)


def state_shardings(state: RunsState, mesh, axis: str):
  """A RunsState's shardings when the runs are spread: every per-run leaf split over `axis`
  on its leading [R] axis, the program's step replicated."""
  split = NamedSharding(mesh, P(axis))
  shardings = jax.tree_util.tree_map(lambda _: split, state)
  return shardings.replace(step=NamedSharding(mesh, P()))


def use_loop(config) -> bool:
  """config.runs_vectorize: "loop" (each run's update in turn: unbatched matmuls and
  convolutions, what XLA's CPU kernels do best), "vmap" (batched kernels, for accelerators),
  "auto": loop on CPU, vmap elsewhere."""
  if config.runs_vectorize == "auto":
    return jax.default_backend() == "cpu"
  return config.runs_vectorize == "loop"


def _finish(state: RunsState, new_runs, metrics: dict, ok):
  """The program's step taken: runs that failed now are frozen, their metrics NaN."""
  metrics = {name: jnp.where(ok, value, jnp.nan) for name, value in metrics.items()}
  metrics["alive"] = ok.astype(jnp.float32)
  return state.replace(step=state.step + 1, runs=new_runs, alive=ok,
                       frozen_at=jnp.where(state.alive & ~ok, state.step + 1,
                                           state.frozen_at)), metrics


def _vmapped(run, state: RunsState, data):
  """Every run's update at once (`jax.vmap`). The runs' `step` leaf goes in as the program's
  one step (every live run is at it), unbatched, so the epoch-order `cond` of the one-run step
  stays a branch rather than a select that shuffles every step."""
  axes = jax.tree_util.tree_map(lambda _: 0, state.runs).replace(step=None)
  new, metrics = jax.vmap(run, in_axes=(axes, None, 0), out_axes=(axes, 0))(
      state.runs.replace(step=state.step), data, state.hparams)
  new = new.replace(step=jnp.broadcast_to(new.step, state.alive.shape))
  ok = state.alive & jax.vmap(all_finite)(new) & jax.vmap(all_finite)(metrics)
  return _where(ok, new, state.runs), metrics, ok


def _looped(run, state: RunsState, data):
  """Each run's update in turn: a `lax.scan` over r whose one traced body takes run r's state
  and values out of the stacked state and writes its update back (in place: the stacked runs
  are the loop's carry), so the program, and its compile time, do not grow with R, and no
  kernel is batched."""
  take = lambda tree, r: jax.tree_util.tree_map(
      lambda x: jax.lax.dynamic_index_in_dim(x, r, keepdims=False), tree)

  def one(stacked, inputs):
    r, hp, alive = inputs
    old = take(stacked, r)
    new, metrics = run(old, data, hp)
    ok = alive & all_finite(new) & all_finite(metrics)
    kept = jax.tree_util.tree_map(lambda n, o: jnp.where(ok, n, o), new, old)
    stacked = jax.tree_util.tree_map(
        lambda s, k: jax.lax.dynamic_update_index_in_dim(s, k, r, 0), stacked, kept)
    return stacked, (metrics, ok)

  num_runs = state.alive.shape[0]
  new_runs, (metrics, ok) = jax.lax.scan(
      one, state.runs, (jnp.arange(num_runs), state.hparams, state.alive))
  return new_runs, metrics, ok


def over_runs(one_run, family, loop: bool):
  """The runs axis, from one place: `one_run(family)` → (state, data) → one update of one run
  ⇒ (RunsState, data) → one update of every run, run r with its swept values in
  `family.hyper`, vmapped or (`loop`, see `use_loop`) looped. Run r's update is the one its
  single run would take (same key, same rows); a run whose update is non-finite keeps its
  last finite state and is frozen."""
  def run(state, data, hp):
    return one_run(with_hyperparameters(family, hp))(state, data)

  def runs_step(state: RunsState, data):
    return _finish(state, *(_looped if loop else _vmapped)(run, state, data))

  return runs_step


def spread(runs_step, mesh, axis: str):
  """`runs_step` with the runs split over the devices of `mesh` (`spread_over_devices`): each
  device updates its R / D runs on its own copy of the data [1, N, ...] (a `shard_map`; the
  program's step, the one replicated leaf, is the same on every device by construction, so the
  varying-axes check, which vmapped epoch-order branches confuse, is off)."""
  def specs(state):
    return jax.tree_util.tree_map(lambda _: P(axis), state).replace(step=P())

  def spread_step(state: RunsState, data):
    return jax.shard_map(runs_step, mesh=mesh, in_specs=(specs(state), P(axis)),
                         out_specs=(specs(state), P(axis)), check_vma=False)(state, data)

  return spread_step


class Monitor:
  """Host side of freezing: one line per newly frozen run, the list at the end."""

  def __init__(self, plan: sweep.Plan, alive: np.ndarray, frozen_at: np.ndarray):
    self.plan = plan
    self.frozen = {r: int(frozen_at[r]) for r in np.flatnonzero(~np.asarray(alive))}

  def update(self, first_step: int, alive_rows: np.ndarray) -> list[str]:
    """alive_rows [steps, R] (1.0 / 0.0) of steps first_step + 1, …: lines for runs that froze."""
    lines = []
    for r in range(self.plan.size):
      dead = np.flatnonzero(alive_rows[:, r] < 0.5)
      if r not in self.frozen and dead.size:
        self.frozen[r] = first_step + int(dead[0]) + 1
        lines.append(f"{self.plan.describe(r)} became non-finite at step {self.frozen[r]}: "
                     f"frozen at its last finite state; the other runs go on")
    return lines

  @property
  def all_frozen(self) -> bool:
    return len(self.frozen) == self.plan.size

  def summary(self) -> str:
    """'frozen: run 2 (seed 2, learning_rate=10) at step 37; …' or ''."""
    return "; ".join(f"{self.plan.describe(r)} at step {s}" for r, s in sorted(self.frozen.items()))
