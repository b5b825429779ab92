"""The GAN family's update (train/gan_step.py): one Adam step of D on L_D, then one Adam step of
G on L_G against the *updated* D, each with its own optimiser (seed defect 1), checked against
an independent recomputation; the losses start at chance."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_gan_config
from tests.step_support import assert_trees_close, host_copy, max_abs_diff, run, setup, softplus
from tests.step_support import mnist_subset  # noqa: F401  (a fixture)

IMAGE_SHAPE = (28, 28, 1)


def test_gan_step_is_d_then_g_with_separate_optimisers(mnist_subset):
  config = make_tiny_gan_config()  # LeakyReLU, tanh, dropout 0.3, non-saturating G loss.
  family = build_family(config, IMAGE_SHAPE)
  state = jax.jit(lambda k: family.init_state(k, 64, IMAGE_SHAPE))(jax.random.PRNGKey(0))
  batch = {"image": jnp.asarray(mnist_subset["image"][:8])}
  key = jax.random.PRNGKey(42)
  before = host_copy(state)
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
    return jnp.mean(softplus(-logits[:8])) + jnp.mean(softplus(logits[8:]))

  d_value, d_grads = jax.jit(jax.value_and_grad(d_loss))(before.d_params)
  d_updates, d_opt = tx.update(d_grads, tx.init(before.d_params), before.d_params)
  d_params = optax.apply_updates(before.d_params, d_updates)

  z_g = jax.random.normal(jax.random.split(g_noise)[0], (8, 8))

  def g_loss(g_params, against):
    logits = disc.apply(against, gen.apply(g_params, z_g), rngs={"dropout": g_drop})
    return jnp.mean(softplus(-logits))  # −E log σ(l): non-saturating.

  g_value, g_grads = jax.jit(jax.value_and_grad(g_loss))(before.g_params, d_params)
  g_updates, g_opt = tx.update(g_grads, tx.init(before.g_params), before.g_params)
  g_params = optax.apply_updates(before.g_params, g_updates)

  atol = 1e-6  # Each parameter moves by ≈ lr = 2e-4 on Adam's first step.
  assert_trees_close(new_state.d_params, d_params, atol)
  assert_trees_close(new_state.d_opt_state, d_opt, atol)
  assert_trees_close(new_state.g_params, g_params, atol)
  assert_trees_close(new_state.g_opt_state, g_opt, atol)
  np.testing.assert_allclose(metrics["d_loss"], d_value, rtol=1e-5)
  np.testing.assert_allclose(metrics["g_loss"], g_value, rtol=1e-5)
  assert int(new_state.step) == 1
  np.testing.assert_array_equal(new_state.rng, before.rng)
  np.testing.assert_array_equal(new_state.data_order, before.data_order)

  # Both networks moved, and by about one Adam step each.
  assert 1e-4 < max_abs_diff(new_state.d_params, before.d_params) < 3e-4
  assert 1e-4 < max_abs_diff(new_state.g_params, before.g_params) < 3e-4

  # The check can tell the orderings apart: G against the *old* D gives another update.
  stale_grads = jax.jit(jax.grad(g_loss))(before.g_params, before.d_params)
  stale_updates, _ = tx.update(stale_grads, tx.init(before.g_params), before.g_params)
  stale = optax.apply_updates(before.g_params, stale_updates)
  assert max_abs_diff(stale, g_params) > 10 * atol



def test_gan_losses_start_near_chance(mnist_subset):
  """At initialisation D(x) ≈ D(G(z)) ≈ ½, so L_D ≈ 2 ln 2 and L_G ≈ ln 2."""
  config = make_tiny_gan_config()
  _, state, data, multi_step = setup(config, mnist_subset)
  _, metrics = run(multi_step, state, data, [1])
  np.testing.assert_allclose(metrics[0]["d_loss"][0], 2 * np.log(2), rtol=0.1)
  np.testing.assert_allclose(metrics[0]["g_loss"][0], np.log(2), rtol=0.1)
