"""The GAN family (train/gan_step.py) on the zoo's architectures: BatchNorm statistics change in
the update and not when sampling, n_critic D steps per G step, the EMA of G against its closed
form, the conditional grid, and a conditional GAN that draws the class it is asked for. One
step equals an independent recomputation: an Adam step of D on L_D, then one of G on L_G
against the *updated* D, each with its own optimiser (seed defect 1); losses start at chance."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest


from genimg_jax import sharding
from genimg_jax.data import placement
from genimg_jax.train import compiled
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_zoo_config as tiny_config
from tests.conftest import make_tiny_gan_config
from tests.step_support import assert_trees_close, host_copy, max_abs_diff, run, setup, softplus
from tests.step_support import mnist_subset  # noqa: F401  (a fixture)


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
  mesh = sharding.make_mesh()
  state = jax.jit(lambda k: family.init_state(k, 128, (28, 28, 1)),
                  out_shardings=sharding.replicated(mesh))(jax.random.PRNGKey(0))
  data = placement.place_resident(images, labels, mesh)
  multi = compiled.build(family, config, mesh, compiled.layout_for(family, config, mesh, 128))
  state, _ = multi(state, data, 150)
  z = jax.random.normal(jax.random.PRNGKey(5), (32, config.latent_dim))
  means = [float(jnp.mean(jax.jit(family.generate)(
      state, {"z": z, "label": jnp.full((32,), c, jnp.int32)}))) for c in (0, 1)]
  assert means[1] - means[0] > 0.3, means  # Pixel means in [0, 1]: data are 0.12 vs 0.86.


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


@pytest.mark.slow
def test_gan_losses_start_near_chance(mnist_subset):
  """At initialisation D(x) ≈ D(G(z)) ≈ ½, so L_D ≈ 2 ln 2 and L_G ≈ ln 2."""
  config = make_tiny_gan_config()
  _, state, data, multi_step = setup(config, mnist_subset)
  _, metrics = run(multi_step, state, data, [1])
  np.testing.assert_allclose(metrics[0]["d_loss"][0], 2 * np.log(2), rtol=0.1)
  np.testing.assert_allclose(metrics[0]["g_loss"][0], np.log(2), rtol=0.1)


def _d_logits(family, state, images):
  """D's train-mode logits of `images` alone (their own BatchNorm batch statistics)."""
  real = (images.astype(jnp.float32) / 255.0) * (family.data_range[1] - family.data_range[0]) \
      + family.data_range[0]
  variables = {**state.d_params, **state.d_stats}
  logits, _ = family.discriminator.apply(variables, real, None, train=True,
                                         mutable=list(state.d_stats))
  return logits


@pytest.mark.slow  # The fast tier keeps: nothing changes without BatchNorm or dropout.
@pytest.mark.parametrize("separate", [True, False])
def test_separate_discriminator_batches_normalise_real_and_fake_each_by_its_own(separate):
  """With BatchNorm in D, D(x) in the update equals D applied to the real batch alone exactly
  when real and fake go through D in two passes (compare_gan's way, and G's update's)."""
  config = tiny_config("lucic_ns_gan", discriminator_separate_batches=separate)
  family, state = _family_and_state(config)
  assert "batch_stats" in state.d_stats
  batch = _batch(config, family)
  _, metrics = jax.jit(family.train_step)(state, batch, jax.random.PRNGKey(3))
  alone = float(jnp.mean(_d_logits(family, state, batch["image"])))
  if separate:
    np.testing.assert_allclose(float(metrics["logit_real"]), alone, rtol=1e-5, atol=1e-6)
  else:  # One pass over both: the batch statistics mix real and fake.
    assert abs(float(metrics["logit_real"]) - alone) > 1e-4


def test_separate_discriminator_batches_change_nothing_without_batchnorm_or_dropout():
  """gan_seed's D has neither: one pass or two give the same update, to float rounding (which
  Adam's normalised step can lift to ~1e-6 where a gradient is near zero)."""
  config = tiny_config("gan_seed")
  states = []
  for separate in (False, True):
    config.discriminator_separate_batches = separate
    family, state = _family_and_state(config)
    states.append(jax.jit(family.train_step)(state, _batch(config, family),
                                             jax.random.PRNGKey(3))[0])
  assert_trees_close(host_copy(states[0].d_params), host_copy(states[1].d_params), 1e-5)
  assert_trees_close(host_copy(states[0].g_params), host_copy(states[1].g_params), 1e-5)
