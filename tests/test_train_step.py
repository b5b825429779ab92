"""The pure update steps and their compiled multi-step dispatch.

- The GAN step equals an independent recomputation: one Adam step of D on L_D, then one Adam
  step of G on L_G against the *updated* D, each with its own optimiser (seed defect 1).
- The VAE step equals an independent Adam step on the negative ELBO.
- Determinism: same seed ⇒ bit-identical; K steps in one scan ⇒ K single-step dispatches.
- One trace per K; a VAE overfits one batch; batching visits every example once per epoch.
"""

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genimg_jax.data import embedded
from genimg_jax.train import batching, compiled
from genimg_jax.train.families import build_family
from tests.conftest import (make_tiny_conv_vae_config, make_tiny_gan_config,
                            make_tiny_vae_config, make_tiny_zoo_config)

IMAGE_SHAPE = (28, 28, 1)


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def _host_copy(tree):
  """A host copy that survives the donation of `tree`'s device buffers."""
  return jax.tree_util.tree_map(lambda x: np.array(x, copy=True), tree)


def _assert_trees_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(_leaves(a), _leaves(b)):
    np.testing.assert_array_equal(x, y)


def _assert_trees_differ(a, b):
  assert any(not np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b)))


def _assert_trees_close(a, b, atol):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(_leaves(a), _leaves(b)):
    np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def _max_abs_diff(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(_leaves(a), _leaves(b)))


@pytest.fixture(scope="module")
def mnist_subset():
  """The first 64 embedded MNIST training digits: uint8 [64, 28, 28, 1], int32 [64]."""
  images, labels = embedded.load("train")
  return {"image": np.asarray(images[:64]), "label": np.asarray(labels[:64])}


def _setup(config, data, seed=0):
  """(family, fresh state placed like the loop places it, device data, MultiStep)."""
  image_shape = data["image"].shape[1:]
  family = build_family(config, image_shape, 10)
  mesh = compiled.make_mesh()
  replicated = compiled.replicated(mesh)
  init = jax.jit(lambda key: family.init_state(key, len(data["image"]), image_shape),
                 out_shardings=replicated)
  state = init(jax.random.PRNGKey(seed))
  device_data = compiled.place_data(data["image"], data["label"], mesh)
  multi_step = compiled.MultiStep(family.train_step, config.batch_size, mesh,
                                  batches_per_step=getattr(family, "batches_per_step", 1))
  return family, state, device_data, multi_step


DETERMINISM_CASES = {  # name → (config maker, pad the 28×28 digits to 32×32 for the 32-px CNN)
    "gan": (make_tiny_gan_config, False),
    "vae": (make_tiny_vae_config, False),
    "conv_vae": (make_tiny_conv_vae_config, False),
    "dcgan": (lambda: make_tiny_zoo_config("dcgan"), False),  # BatchNorm in G, dropout in D.
    "wgan_gp_ema": (lambda: make_tiny_zoo_config("wgan_gp", ema_decay=0.9), True),  # n_critic 5.
}


# ----------------------------------------------------------------------------- one GAN step


def _softplus(x):
  return jnp.logaddexp(0.0, x)  # −log σ(−x) = softplus(x).


def test_gan_step_is_d_then_g_with_separate_optimisers(mnist_subset):
  config = make_tiny_gan_config()  # LeakyReLU, tanh, dropout 0.3, non-saturating G loss.
  family = build_family(config, IMAGE_SHAPE)
  state = jax.jit(lambda k: family.init_state(k, 64, IMAGE_SHAPE))(jax.random.PRNGKey(0))
  batch = {"image": jnp.asarray(mnist_subset["image"][:8])}
  key = jax.random.PRNGKey(42)
  before = _host_copy(state)
  new_state, metrics = jax.jit(family.train_step)(state, batch, key)

  # Independent recomputation, same key layout: key → (D key, G key); the one D update's key is
  # split(D key, n_critic=1)[0] → (noise, G dropout, D dropout, penalty); the G key → (noise,
  # G dropout, D dropout); z = normal(split(noise)[0]).
  tx = optax.adam(2e-4, b1=0.5, b2=0.999)
  gen, disc = family.generator, family.discriminator
  d_key, g_key = jax.random.split(key)
  d_noise, _, d_drop, _ = jax.random.split(jax.random.split(d_key, 1)[0], 4)
  g_noise, _, g_drop = jax.random.split(g_key, 3)
  real = jnp.asarray(mnist_subset["image"][:8], jnp.float32) / 127.5 - 1.0  # [0, 255] → [−1, 1]
  fake = gen.apply(before.g_params, jax.random.normal(jax.random.split(d_noise)[0], (8, 8)))

  def d_loss(d_params):
    logits = disc.apply(d_params, jnp.concatenate([real, fake]), rngs={"dropout": d_drop})
    # −E log σ(l_real) − E log(1 − σ(l_fake)) = E softplus(−l_real) + E softplus(l_fake).
    return jnp.mean(_softplus(-logits[:8])) + jnp.mean(_softplus(logits[8:]))

  d_value, d_grads = jax.jit(jax.value_and_grad(d_loss))(before.d_params)
  d_updates, d_opt = tx.update(d_grads, tx.init(before.d_params), before.d_params)
  d_params = optax.apply_updates(before.d_params, d_updates)

  z_g = jax.random.normal(jax.random.split(g_noise)[0], (8, 8))

  def g_loss(g_params, against):
    logits = disc.apply(against, gen.apply(g_params, z_g), rngs={"dropout": g_drop})
    return jnp.mean(_softplus(-logits))  # −E log σ(l): non-saturating.

  g_value, g_grads = jax.jit(jax.value_and_grad(g_loss))(before.g_params, d_params)
  g_updates, g_opt = tx.update(g_grads, tx.init(before.g_params), before.g_params)
  g_params = optax.apply_updates(before.g_params, g_updates)

  atol = 1e-6  # Each parameter moves by ≈ lr = 2e-4 on Adam's first step.
  _assert_trees_close(new_state.d_params, d_params, atol)
  _assert_trees_close(new_state.d_opt_state, d_opt, atol)
  _assert_trees_close(new_state.g_params, g_params, atol)
  _assert_trees_close(new_state.g_opt_state, g_opt, atol)
  np.testing.assert_allclose(metrics["d_loss"], d_value, rtol=1e-5)
  np.testing.assert_allclose(metrics["g_loss"], g_value, rtol=1e-5)
  assert int(new_state.step) == 1
  np.testing.assert_array_equal(new_state.rng, before.rng)
  np.testing.assert_array_equal(new_state.data_order, before.data_order)

  # Both networks moved, and by about one Adam step each.
  assert 1e-4 < _max_abs_diff(new_state.d_params, before.d_params) < 3e-4
  assert 1e-4 < _max_abs_diff(new_state.g_params, before.g_params) < 3e-4

  # The check can tell the orderings apart: G against the *old* D gives another update.
  stale_grads = jax.jit(jax.grad(g_loss))(before.g_params, before.d_params)
  stale_updates, _ = tx.update(stale_grads, tx.init(before.g_params), before.g_params)
  stale = optax.apply_updates(before.g_params, stale_updates)
  assert _max_abs_diff(stale, g_params) > 10 * atol


def test_vae_step_is_one_adam_step_on_negative_elbo(mnist_subset):
  config = make_tiny_vae_config()
  family = build_family(config, IMAGE_SHAPE)
  state = jax.jit(lambda k: family.init_state(k, 64, IMAGE_SHAPE))(jax.random.PRNGKey(0))
  before = _host_copy(state)
  key = jax.random.PRNGKey(7)
  batch = {"image": jnp.asarray(mnist_subset["image"][:8])}
  new_state, metrics = jax.jit(family.train_step)(state, batch, key)
  x = jnp.asarray(mnist_subset["image"][:8], jnp.float32) / 255.0

  def loss(params):
    mean, logvar = family.model.apply(params, x, method="encode")
    # z = μ + σ·ε with ε drawn from the step key as [1, B, L] (the family's layout).
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, (1, *mean.shape))[0]
    logits = family.model.apply(params, z, method="decode")
    recon = jnp.sum((_softplus(-logits) * x + _softplus(logits) * (1 - x)).reshape(8, -1), 1)
    kl = 0.5 * jnp.sum(mean**2 + jnp.exp(logvar) - 1.0 - logvar, axis=1)
    return jnp.mean(recon + kl)

  value, grads = jax.jit(jax.value_and_grad(loss))(before.params)
  tx = optax.adam(1e-3, b1=0.9, b2=0.999)
  updates, opt = tx.update(grads, tx.init(before.params), before.params)
  _assert_trees_close(new_state.params, optax.apply_updates(before.params, updates), 1e-6)
  _assert_trees_close(new_state.opt_state, opt, 1e-5)
  np.testing.assert_allclose(metrics["loss"], value, rtol=1e-5)
  np.testing.assert_allclose(metrics["neg_elbo"], value, rtol=1e-5)  # β = 1.
  assert int(new_state.step) == 1


# ----------------------------------------------------------------------------- determinism


def _run(multi_step, state, data, sizes):
  """Dispatches of `sizes` steps each; returns (final state on the host, metrics list)."""
  metrics = []
  for k in sizes:
    state, m = multi_step(state, data, k)
    metrics.append(jax.device_get(m))
  return _host_copy(state), metrics


@pytest.fixture(scope="module", params=list(DETERMINISM_CASES))
def determinism_runs(request, mnist_subset):
  """Runs of one family from independently initialised states (one MultiStep, so each
  dispatch length compiles once): seed 0 as 10 steps in one dispatch (twice), seed 0 as ten
  1-step dispatches, seed 1 as one 10-step dispatch. 64 examples / batch 8 = 8 steps per
  epoch, so 10 steps cross an epoch boundary."""
  make_config, pad = DETERMINISM_CASES[request.param]
  config = make_config()
  subset = dict(mnist_subset)
  if pad:
    subset["image"] = np.pad(subset["image"], ((0, 0), (2, 2), (2, 2), (0, 0)))
  family, _, data, multi_step = _setup(config, subset)
  image_shape = subset["image"].shape[1:]
  mesh = compiled.make_mesh()
  init = jax.jit(lambda key: family.init_state(key, 64, image_shape),
                 out_shardings=compiled.replicated(mesh))
  fresh = lambda seed: init(jax.random.PRNGKey(seed))
  params = "params" if config.family == "vae" else "g_params"
  return {
      "params": params,
      "scan": _run(multi_step, fresh(0), data, [10]),
      "scan_again": _run(multi_step, fresh(0), data, [10]),
      "single": _run(multi_step, fresh(0), data, [1] * 10),
      "other_seed": _run(multi_step, fresh(1), data, [10]),
  }


@pytest.mark.slow
def test_same_seed_bit_identical(determinism_runs):
  a, b = determinism_runs["scan"][0], determinism_runs["scan_again"][0]
  assert int(a.step) == 10
  _assert_trees_equal(a, b)


@pytest.mark.slow
def test_other_seed_differs(determinism_runs):
  name = determinism_runs["params"]
  a, c = determinism_runs["scan"][0], determinism_runs["other_seed"][0]
  _assert_trees_differ(getattr(a, name), getattr(c, name))
  assert not np.array_equal(a.data_order, c.data_order)  # Batches are seeded too.


@pytest.mark.slow
def test_k_steps_in_one_dispatch_equal_k_single_dispatches(determinism_runs):
  scanned, scanned_metrics = determinism_runs["scan"]
  single, single_metrics = determinism_runs["single"]
  assert int(scanned.step) == int(single.step) == 10
  _assert_trees_equal(scanned, single)
  for name in scanned_metrics[0]:
    np.testing.assert_array_equal(scanned_metrics[0][name],
                                  np.concatenate([m[name] for m in single_metrics]))


@pytest.mark.slow
@pytest.mark.parametrize("make_config", [make_tiny_gan_config, make_tiny_vae_config],
                         ids=["gan", "vae"])
def test_one_trace_per_dispatch_length(make_config, mnist_subset):
  chex.clear_trace_counter()
  config = make_config()
  family = build_family(config, IMAGE_SHAPE)
  traces = []

  def counted(state, batch, key):
    traces.append(1)
    return family.train_step(state, batch, key)

  guarded = chex.assert_max_traces(counted, n=1)
  mesh = compiled.make_mesh()
  replicated = compiled.replicated(mesh)
  state = jax.jit(lambda key: family.init_state(key, 64, IMAGE_SHAPE),
                  out_shardings=replicated)(jax.random.PRNGKey(0))
  data = compiled.place_data(mnist_subset["image"], mnist_subset["label"], mesh)
  multi_step = compiled.MultiStep(guarded, config.batch_size, mesh)
  for _ in range(4):  # Fresh states from the previous dispatch must hit the same executable.
    state, _ = multi_step(state, data, 3)
  assert int(state.step) == 12
  assert len(traces) == 1
  # The guard is live: a new dispatch length compiles (and traces) again, which it catches.
  with pytest.raises(AssertionError, match="traced"):
    multi_step(state, data, 2)
  chex.clear_trace_counter()


# ----------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_vae_overfits_one_batch(mnist_subset):
  config = make_tiny_vae_config(encoder_hidden=(128,), decoder_hidden=(128,), latent_dim=8)
  one_batch = {k: v[:8] for k, v in mnist_subset.items()}  # N = batch: every step, same 8.
  _, state, data, multi_step = _setup(config, one_batch)
  _, metrics = _run(multi_step, state, data, [50] * 4)
  losses = np.concatenate([m["loss"] for m in metrics])
  assert np.all(np.isfinite(losses))
  start, end = losses[:5].mean(), losses[-5:].mean()
  assert start > 400  # ≈ 784 ln 2 ≈ 543 nats for logits near 0.
  assert end < 0.5 * start, (start, end)


@pytest.mark.slow
def test_gan_losses_start_near_chance(mnist_subset):
  """At initialisation D(x) ≈ D(G(z)) ≈ ½, so L_D ≈ 2 ln 2 and L_G ≈ ln 2."""
  config = make_tiny_gan_config()
  _, state, data, multi_step = _setup(config, mnist_subset)
  _, metrics = _run(multi_step, state, data, [1])
  np.testing.assert_allclose(metrics[0]["d_loss"][0], 2 * np.log(2), rtol=0.1)
  np.testing.assert_allclose(metrics[0]["g_loss"][0], np.log(2), rtol=0.1)


# ----------------------------------------------------------------------------- batching


class _BatchState(flax.struct.PyTreeNode):
  step: jnp.ndarray
  rng: jnp.ndarray
  data_order: jnp.ndarray


def _indexed_data(n):
  """Image i is filled with i % 256 and labelled i, so a batch tells which examples it holds."""
  index = np.arange(n)
  images = np.broadcast_to((index % 256).astype(np.uint8)[:, None, None, None], (n, 2, 2, 1))
  return {"image": jnp.asarray(images), "label": jnp.asarray(index, jnp.int32)}


def _epoch_labels(num_examples, batch_size, num_steps, seed=0):
  data = _indexed_data(num_examples)
  state = _BatchState(step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(seed),
                      data_order=jnp.arange(num_examples, dtype=jnp.int32))
  next_batch = jax.jit(batching.next_batch, static_argnums=2)
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
