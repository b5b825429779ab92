"""Which rows each step trains on: the epoch order, the shard layout and the row draw, plus the
pixel scaling every family applies to a batch.

Epochs: each epoch visits the data in a fresh random order (a permutation derived from the run's
key and the epoch number), `N // batch_size` batches per epoch, the remainder dropped. The order
lives in the state (`data_order`), so it is checkpointed and a resumed run sees the same batches.
The device-resident path draws the rows inside the compiled step (`device_rows`); the streamed
path reads the same rows on the host (data/streaming.py).
"""

import dataclasses

import jax
import jax.numpy as jnp


def scale_images(images_u8: jnp.ndarray, data_range: tuple[float, float]) -> jnp.ndarray:
  """uint8 [0, 255] → float32 in [lo, hi] (e.g. [0, 1] for sigmoid, [−1, 1] for tanh models)."""
  lo, hi = data_range
  return images_u8.astype(jnp.float32) * ((hi - lo) / 255.0) + lo


def unscale_images(images: jnp.ndarray, data_range: tuple[float, float]) -> jnp.ndarray:
  """float in [lo, hi] → float32 in [0, 1] (for PNGs and `generate`)."""
  lo, hi = data_range
  return jnp.clip((images.astype(jnp.float32) - lo) / (hi - lo), 0.0, 1.0)


def split_run_key(rng: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """The run key → (base of the per-step keys, base of the per-epoch data orders)."""
  step_base, data_base = jax.random.split(rng)
  return step_base, data_base


# Sharded draws (the compiled paths): the training split is cut into `num_shards` contiguous
# shards of `shard_size` examples (the remainder dropped); each epoch visits every shard in its
# own random order, and the global batch is the concatenation over shards of each shard's next
# batch_size / num_shards examples. Device d of D holds shard d // (D / num_shards) and draws
# its batch_size / D rows of that shard's part. With one shard (one process) the batch at epoch
# position p is rows order[p·B : (p+1)·B] of one permutation of the set; with S shards the
# global batches depend on S only, not on how the devices are spread over processes (so
# 1 process × 4 devices = 2 processes × 2 devices).


@dataclasses.dataclass(frozen=True)
class Layout:
  """Static sizes of the sharded draw."""

  batch_size: int  # Global batch.
  num_devices: int  # D: devices of the mesh (every process's).
  num_shards: int = 1  # S: data shards (normally one per process); D % S == 0.
  shard_size: int = 0  # N_s: examples per shard.

  @property
  def rows_per_device(self) -> int:
    return self.batch_size // self.num_devices


def shard_orders(data_base, epoch, layout: Layout) -> jnp.ndarray:
  """This epoch's visiting order of every shard, flattened: int32 [S * N_s] (shard-local rows)."""
  epoch_key = jax.random.fold_in(data_base, epoch)
  if layout.num_shards == 1:
    return jax.random.permutation(epoch_key, layout.shard_size)
  keys = jax.vmap(lambda s: jax.random.fold_in(epoch_key, s))(jnp.arange(layout.num_shards))
  return jax.vmap(lambda k: jax.random.permutation(k, layout.shard_size))(keys).reshape(-1)


def epoch_position(step, layout: Layout):
  """(epoch, position of step `step`'s batch within it)."""
  steps_per_epoch = layout.shard_size // (layout.batch_size // layout.num_shards)
  return jnp.divmod(step, steps_per_epoch)


def epoch_order(rng, epoch, layout: Layout) -> jnp.ndarray:
  """The run key `rng`'s visiting order of epoch `epoch` (shard_orders of its data key)."""
  return shard_orders(split_run_key(rng)[1], epoch, layout)


def advance_order(state, layout: Layout):
  """(state with this epoch's order, position of `state.step`'s batch within the epoch)."""
  epoch, position = epoch_position(state.step, layout)
  order = jax.lax.cond(position == 0, lambda: epoch_order(state.rng, epoch, layout),
                       lambda: state.data_order)
  return state.replace(data_order=order), position


def device_rows(order, position, local_data: dict, device, layout: Layout) -> dict:
  """Device `device`'s rows of the batch at `position`: [B / D, ...] from its shard's data.

  local_data: this device's shard {"image": uint8 [N_s, H, W, C], "label": int32 [N_s]}.
  """
  per_shard = layout.num_devices // layout.num_shards
  shard, part = jnp.divmod(device, per_shard)
  start = (shard * layout.shard_size + position * (layout.batch_size // layout.num_shards)
           + part * layout.rows_per_device)
  indices = jax.lax.dynamic_slice_in_dim(order, start, layout.rows_per_device)
  return {name: jnp.take(array, indices, axis=0) for name, array in local_data.items()}


def stack_batches(rows: dict, batches_per_step: int) -> dict:
  """One device's rows of a step [n · r, ...] → [n, r, ...]: one batch per update of the step
  (e.g. a GAN's n_critic D updates); unchanged when n = 1."""
  n = batches_per_step
  if n == 1:
    return rows
  return jax.tree_util.tree_map(lambda x: x.reshape((n, x.shape[0] // n, *x.shape[1:])), rows)
