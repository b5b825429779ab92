"""The row draw (data/batching.py): every example once per epoch, fresh orders per epoch and
seed, the remainder dropped, pixel scaling."""

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax.data import batching



class _BatchState(flax.struct.PyTreeNode):
  step: jnp.ndarray
  rng: jnp.ndarray
  data_order: jnp.ndarray


def _indexed_data(n):
  """Image i is filled with i % 256 and labelled i, so a batch tells which examples it holds."""
  index = np.arange(n)
  images = np.broadcast_to((index % 256).astype(np.uint8)[:, None, None, None], (n, 2, 2, 1))
  return {"image": jnp.asarray(images), "label": jnp.asarray(index, jnp.int32)}


def _next_batch(state, data, batch_size):
  """The engine's draw on one device, one shard: (state with this epoch's order, the batch)."""
  layout = batching.Layout(batch_size, 1, 1, data["label"].shape[0])
  state, position = batching.advance_order(state, layout)
  return state, batching.device_rows(state.data_order, position, data, 0, layout)


def _epoch_labels(num_examples, batch_size, num_steps, seed=0):
  data = _indexed_data(num_examples)
  state = _BatchState(step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(seed),
                      data_order=jnp.arange(num_examples, dtype=jnp.int32))
  next_batch = jax.jit(_next_batch, static_argnums=2)
  batches = []
  for step in range(num_steps):
    state, batch = next_batch(state.replace(step=jnp.asarray(step, jnp.int32)), data, batch_size)
    labels = np.asarray(batch["label"])
    assert labels.shape == (batch_size,)
    # Image and label come from the same example.
    np.testing.assert_array_equal(np.asarray(batch["image"])[:, 0, 0, 0], labels % 256)
    batches.append(labels)
  return batches


def test_every_example_once_per_epoch_and_epochs_reshuffle():
  n, b = 300, 10  # 30 steps per epoch; labels beyond 255 check the image ↔ label pairing.
  batches = _epoch_labels(n, b, 2 * n // b)
  first = np.concatenate(batches[: n // b])
  second = np.concatenate(batches[n // b:])
  np.testing.assert_array_equal(np.sort(first), np.arange(n))
  np.testing.assert_array_equal(np.sort(second), np.arange(n))
  assert not np.array_equal(first, np.arange(n))  # Shuffled, not in storage order.
  assert not np.array_equal(first, second)  # A fresh order each epoch.


def test_remainder_is_dropped_without_repeats_or_empty_batches():
  n, b = 43, 8  # 5 full batches per epoch, 3 examples left out of each epoch.
  batches = _epoch_labels(n, b, 10)
  first = np.concatenate(batches[:5])
  assert len(np.unique(first)) == 40 and set(first) <= set(range(n))
  second = np.concatenate(batches[5:])
  assert len(np.unique(second)) == 40


def test_batch_order_depends_on_seed():
  a = np.concatenate(_epoch_labels(64, 8, 8, seed=0))
  b = np.concatenate(_epoch_labels(64, 8, 8, seed=1))
  assert not np.array_equal(a, b)


def test_scale_and_unscale_images():
  u8 = jnp.array([0, 51, 255], jnp.uint8)
  np.testing.assert_allclose(batching.scale_images(u8, (0.0, 1.0)), [0.0, 0.2, 1.0], rtol=1e-6)
  np.testing.assert_allclose(batching.scale_images(u8, (-1.0, 1.0)), [-1.0, -0.6, 1.0],
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(batching.unscale_images(jnp.array([-1.0, 0.0, 1.0, 3.0]), (-1.0, 1.0)),
                             [0.0, 0.5, 1.0, 1.0])
