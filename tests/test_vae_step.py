"""The VAE family's update (train/vae_step.py): one Adam step on the negative ELBO, checked
against an independent recomputation; a VAE overfits one batch."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_vae_config
from tests.step_support import assert_trees_close, host_copy, run, setup, softplus
from tests.step_support import mnist_subset  # noqa: F401  (a fixture)

IMAGE_SHAPE = (28, 28, 1)


def test_vae_step_is_one_adam_step_on_negative_elbo(mnist_subset):
  config = make_tiny_vae_config()
  family = build_family(config, IMAGE_SHAPE)
  state = jax.jit(lambda k: family.init_state(k, 64, IMAGE_SHAPE))(jax.random.PRNGKey(0))
  before = host_copy(state)
  key = jax.random.PRNGKey(7)
  batch = {"image": jnp.asarray(mnist_subset["image"][:8])}
  new_state, metrics = jax.jit(family.train_step)(state, batch, key)
  x = jnp.asarray(mnist_subset["image"][:8], jnp.float32) / 255.0

  def loss(params):
    mean, logvar = family.model.apply(params, x, method="encode")
    # z = μ + σ·ε with ε drawn from the step key as [1, B, L] (the family's layout).
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, (1, *mean.shape))[0]
    logits = family.model.apply(params, z, method="decode")
    recon = jnp.sum((softplus(-logits) * x + softplus(logits) * (1 - x)).reshape(8, -1), 1)
    kl = 0.5 * jnp.sum(mean**2 + jnp.exp(logvar) - 1.0 - logvar, axis=1)
    return jnp.mean(recon + kl)

  value, grads = jax.jit(jax.value_and_grad(loss))(before.params)
  tx = optax.adam(1e-3, b1=0.9, b2=0.999)
  updates, opt = tx.update(grads, tx.init(before.params), before.params)
  assert_trees_close(new_state.params, optax.apply_updates(before.params, updates), 1e-6)
  assert_trees_close(new_state.opt_state, opt, 1e-5)
  np.testing.assert_allclose(metrics["loss"], value, rtol=1e-5)
  np.testing.assert_allclose(metrics["neg_elbo"], value, rtol=1e-5)  # β = 1.
  assert int(new_state.step) == 1


# ----------------------------------------------------------------------------- determinism


def test_vae_overfits_one_batch(mnist_subset):
  config = make_tiny_vae_config(encoder_hidden=(128,), decoder_hidden=(128,), latent_dim=8)
  one_batch = {k: v[:8] for k, v in mnist_subset.items()}  # N = batch: every step, same 8.
  _, state, data, multi_step = setup(config, one_batch)
  _, metrics = run(multi_step, state, data, [50] * 4)
  losses = np.concatenate([m["loss"] for m in metrics])
  assert np.all(np.isfinite(losses))
  start, end = losses[:5].mean(), losses[-5:].mean()
  assert start > 400  # ≈ 784 ln 2 ≈ 543 nats for logits near 0.
  assert end < 0.5 * start, (start, end)
