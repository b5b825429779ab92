"""The compiled update: K training steps per dispatch via `lax.scan`, data parallel via sharding.

`state` is replicated over a 1-D device mesh ("data"), each batch is split along it, and XLA's
SPMD partitioner inserts the gradient all-reduce. The state buffers are donated. One jitted
function per distinct K (normally just `steps_per_dispatch`, plus a remainder before a log,
sample or checkpoint boundary).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genimg_jax.train import batching

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over the given (default: all local) devices."""
  return Mesh(np.asarray(devices if devices is not None else jax.local_devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the mesh."""
  return NamedSharding(mesh, P(DATA_AXIS))


def step_key(state) -> jnp.ndarray:
  """The key of update number `state.step`: fold_in(step base key, step)."""
  step_base, _ = batching.split_run_key(state.rng)
  return jax.random.fold_in(step_base, state.step)


def stacked_batch_sharded(mesh: Mesh) -> NamedSharding:
  """[n, B, ...] batches (n real batches per step): the B axis split over the mesh."""
  return NamedSharding(mesh, P(None, DATA_AXIS))


class MultiStep:
  """`(state, data) -> (state, metrics [K])`: K updates of `train_step` in one compiled call.

  A step consumes `batches_per_step` batches of `batch_size` (e.g. a GAN's n_critic D updates);
  with more than one, `train_step` gets them stacked as [batches_per_step, batch_size, ...].
  """

  def __init__(self, train_step, batch_size: int, mesh: Mesh, batches_per_step: int = 1):
    self._train_step = train_step
    self._batch_size = batch_size
    self._batches_per_step = batches_per_step
    self._mesh = mesh
    self._compiled = {}  # K → jitted function.

  def _scan(self, state, data, num_steps: int):
    per_step = self._batches_per_step

    def body(state, _):
      state, batch = batching.next_batch(state, data, self._batch_size * per_step)
      if per_step > 1:
        batch = jax.tree_util.tree_map(
            lambda x: x.reshape((per_step, self._batch_size, *x.shape[1:])), batch)
        batch = jax.lax.with_sharding_constraint(batch, stacked_batch_sharded(self._mesh))
      else:
        batch = jax.lax.with_sharding_constraint(batch, batch_sharded(self._mesh))
      return self._train_step(state, batch, step_key(state))

    return jax.lax.scan(body, state, None, length=num_steps)

  def function(self, num_steps: int):
    """The jitted K-step function (compiled on first call for each K)."""
    if num_steps not in self._compiled:
      self._compiled[num_steps] = jax.jit(
          functools.partial(self._scan, num_steps=num_steps), donate_argnums=0)
    return self._compiled[num_steps]

  def __call__(self, state, data, num_steps: int):
    return self.function(num_steps)(state, data)
