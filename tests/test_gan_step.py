"""The GAN family (train/gan_step.py) on the zoo's architectures: BatchNorm statistics change in
the update and not when sampling, n_critic D steps per G step, the EMA of G against its closed
form, the conditional grid, and a conditional GAN that draws the class it is asked for."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax.train import compiled
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_zoo_config as tiny_config


def _shape(config):
  return (config.image_size, config.image_size, 1) if config.image_size else (28, 28, 1)


def _family_and_state(config, num_examples=64, seed=0):
  family = build_family(config, _shape(config), 10)
  state = jax.jit(lambda k: family.init_state(k, num_examples, _shape(config)))(
      jax.random.PRNGKey(seed))
  return family, state


def _batch(config, family, seed=0):
  """Real uint8 images (random) and labels shaped as the engine hands them to train_step."""
  n = family.batches_per_step
  lead = (n, config.batch_size) if n > 1 else (config.batch_size,)
  rng = np.random.default_rng(seed)
  return {"image": jnp.asarray(rng.integers(0, 256, lead + _shape(config), np.uint8)),
          "label": jnp.asarray(rng.integers(0, 10, lead, np.int32))}


def _adam_counts(opt_state) -> list[int]:
  """Every `count` field in an Optax state (Adam's, and the schedule's when there is one)."""
  has_count = lambda x: "count" in getattr(x, "_fields", ())
  return [int(node.count) for node in jax.tree_util.tree_leaves(opt_state, is_leaf=has_count)
          if has_count(node)]


@pytest.mark.slow
def test_batchnorm_statistics_change_in_the_update_not_when_sampling():
  config = tiny_config("dcgan")
  family, state = _family_and_state(config)
  assert "batch_stats" in state.g_stats
  latents, _ = family.grid_latents(jax.random.PRNGKey(1), 8)
  before = jax.device_get(state.g_stats)
  first = jax.jit(family.generate)(state, latents)
  np.testing.assert_array_equal(jax.device_get(state.g_stats)["batch_stats"]["BatchNorm_0"]["mean"],
                                before["batch_stats"]["BatchNorm_0"]["mean"])
  np.testing.assert_array_equal(first, jax.jit(family.generate)(state, latents))  # Eval mode.
  new_state, _ = jax.jit(family.train_step)(state, _batch(config, family), jax.random.PRNGKey(2))
  after = jax.device_get(new_state.g_stats)
  changed = jax.tree_util.tree_map(lambda a, b: bool(np.any(a != b)), before, after)
  assert all(jax.tree_util.tree_leaves(changed))  # Every running mean and variance moved.
  # Eval-mode samples use the running averages: they change once the averages do.
  assert np.any(np.asarray(jax.jit(family.generate)(new_state, latents)) != np.asarray(first))


# The conv configs compile slowly on CPU; the MLP with the same settings checks the same rule.
WGAN_GP_MLP = dict(loss="wgan_gp", gp_weight=10.0, n_critic=5)


@pytest.mark.parametrize("model,overrides", [
    pytest.param("wgan_gp", {}, marks=pytest.mark.slow, id="wgan_gp"),
    pytest.param("gan", WGAN_GP_MLP, id="mlp"),
])
def test_n_critic_five_d_steps_one_g_step_each_on_its_own_batch(model, overrides):
  config = tiny_config(model, **overrides)
  assert config.n_critic == 5
  family, state = _family_and_state(config)
  new_state, metrics = jax.jit(family.train_step)(state, _batch(config, family),
                                                  jax.random.PRNGKey(3))
  assert set(_adam_counts(new_state.d_opt_state)) == {5}
  assert set(_adam_counts(new_state.g_opt_state)) == {1}
  assert float(metrics["gradient_penalty"]) > 0


@pytest.mark.parametrize("model", [pytest.param("dcgan", marks=pytest.mark.slow), "gan"])
def test_ema_equals_its_closed_form_over_training_steps(model):
  decay = 0.8
  config = tiny_config(model, ema_decay=decay)
  family, state = _family_and_state(config)
  step = jax.jit(family.train_step)
  ema0 = jax.device_get(state.g_ema)
  params = []
  for i in range(4):
    state, _ = step(state, _batch(config, family, seed=i), jax.random.PRNGKey(10 + i))
    params.append(jax.device_get(state.g_params))
  k = len(params)
  expected = jax.tree_util.tree_map(
      lambda e0, *ps: decay**k * e0 + (1 - decay) * sum(decay ** (k - 1 - i) * p
                                                        for i, p in enumerate(ps)),
      ema0, *params)
  for got, want in zip(jax.tree_util.tree_leaves(jax.device_get(state.g_ema)),
                       jax.tree_util.tree_leaves(expected)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # Samples come from the EMA parameters when the EMA is on.
  latents, _ = family.grid_latents(jax.random.PRNGKey(0), 4)
  with_ema = jax.jit(family.generate)(state, latents)
  without = jax.jit(family.generate)(state.replace(g_ema=None), latents)
  assert np.any(np.asarray(with_ema) != np.asarray(without))


def test_conditional_grid_has_one_row_per_class():
  family = build_family(tiny_config("cgan"), (28, 28, 1), 10)
  latents, cols = family.grid_latents(jax.random.PRNGKey(0), 64)
  assert cols == 6
  np.testing.assert_array_equal(np.asarray(latents["label"]).reshape(10, 6),
                                np.repeat(np.arange(10), 6).reshape(10, 6))


@pytest.mark.slow
def test_conditional_gan_generates_the_asked_class():
  """cgan on two classes that differ in brightness (dark 0s, bright 1s): after a short run,
  samples asked for class 1 are brighter than samples asked for class 0. A generator that
  ignored its label could not separate them."""
  config = tiny_config("cgan", batch_size=16, learning_rate=1e-3)
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(2, dtype=np.int32), 64)
  base = np.where(labels[:, None, None, None] == 1, 220, 30)
  images = np.clip(base + rng.integers(-25, 25, (128, 28, 28, 1)), 0, 255).astype(np.uint8)
  family = build_family(config, (28, 28, 1), 2)
  mesh = compiled.make_mesh()
  state = jax.jit(lambda k: family.init_state(k, 128, (28, 28, 1)),
                  out_shardings=compiled.replicated(mesh))(jax.random.PRNGKey(0))
  data = compiled.place_data(images, labels, mesh)
  multi = compiled.MultiStep(family.train_step, config.batch_size, mesh)
  state, _ = multi(state, data, 150)
  z = jax.random.normal(jax.random.PRNGKey(5), (32, config.latent_dim))
  means = [float(jnp.mean(jax.jit(family.generate)(
      state, {"z": z, "label": jnp.full((32,), c, jnp.int32)}))) for c in (0, 1)]
  assert means[1] - means[0] > 0.3, means  # Pixel means in [0, 1]: data are 0.12 vs 0.86.
