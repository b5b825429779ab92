"""Batches drawn inside the compiled step from the device-resident data set.

Epochs: each epoch visits the data in a fresh random order (a permutation derived from the run's
key and the epoch number), `N // batch_size` batches per epoch, the remainder dropped. The order
lives in the state (`data_order`), so it is checkpointed and a resumed run sees the same batches.
"""

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


def next_batch(state, data: dict, batch_size: int):
  """Returns (state with this epoch's order, the batch for `state.step`).

  data: {"image": uint8 [N, H, W, C], "label": int32 [N]} on the device.
  """
  num_examples = data["image"].shape[0]
  steps_per_epoch = num_examples // batch_size
  epoch, position = jnp.divmod(state.step, steps_per_epoch)
  _, data_base = split_run_key(state.rng)
  order = jax.lax.cond(
      position == 0,
      lambda: jax.random.permutation(jax.random.fold_in(data_base, epoch), num_examples),
      lambda: state.data_order,
  )
  indices = jax.lax.dynamic_slice_in_dim(order, position * batch_size, batch_size)
  batch = {name: jnp.take(array, indices, axis=0) for name, array in data.items()}
  return state.replace(data_order=order), batch
