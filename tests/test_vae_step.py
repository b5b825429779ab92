"""The VAE family (train/vae_step.py) on every VAE architecture: the objectives, the labels and
the reparameterised sample.

- IWAE with k = 1 equals the one-sample Monte-Carlo ELBO on the same z exactly, and the
  analytic-KL VAE loss in expectation; L_k ≥ ELBO and grows with k.
- The decoder sees z = μ + σ·ε with ε ~ N(0, I) from the loss's key; the encoder is deterministic.
- Labels change the outputs of conditional networks; unconditional ones ignore them; the
  conditional grid has one row per class; an architecture without VAE networks is one line.
- A cvae trained briefly draws the class it is asked for (judged by a classifier trained here).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import math
import numpy as np
import optax
import pytest
from scipy import stats


from genimg_jax import models
from genimg_jax import sharding
from genimg_jax.config_cli import load_config
from genimg_jax.data import embedded
from genimg_jax.data import placement
from genimg_jax.errors import UserError
from genimg_jax.losses import vae as vae_losses
from genimg_jax.models import mlp
from genimg_jax.train import compiled
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_conv_vae_config, make_tiny_vae_config, make_tiny_zoo_config
from tests.conftest import make_tiny_vae_config
from tests.step_support import assert_trees_close, host_copy, run, setup, softplus
from tests.step_support import mnist_subset  # noqa: F401  (a fixture)


IMAGE_SHAPE = (28, 28, 1)


def _config(name, **overrides):
  config = load_config(name)
  config.update(overrides)
  return config


def _init(family, seed=0, shape=IMAGE_SHAPE):
  return jax.jit(lambda k: family.init_state(k, 16, shape))(jax.random.PRNGKey(seed))


@pytest.fixture(scope="module")
def digits():
  """The first 512 embedded training digits: uint8 [512, 28, 28, 1], int32 [512]."""
  images, labels = embedded.load("train")
  return np.asarray(images[:512]), np.asarray(labels[:512])


# ----------------------------------------------------------------------------- IWAE


@pytest.fixture(scope="module")
def trained_vae(digits):
  """An MLP VAE after 150 Adam steps on 512 digits (so q(z|x) is informative), and a batch."""
  config = make_tiny_vae_config(encoder_hidden=(64,), decoder_hidden=(64,), latent_dim=8)
  family = build_family(config, IMAGE_SHAPE)
  state = _init(family)
  step = jax.jit(family.train_step)
  images, labels = digits
  for i in range(150):
    batch = {"image": images[(i % 8) * 64:(i % 8 + 1) * 64]}
    state, _ = step(state, batch, jax.random.PRNGKey(i))
  return config, family, state, images[:16]


def test_iwae_with_one_sample_is_the_monte_carlo_elbo_on_the_same_z(trained_vae):
  """L_1 = log p(x|z) + log p(z) − log q(z|x) at the z the ELBO objective draws from the same
  key: exactly the one-sample Monte-Carlo ELBO, recomputed here with numpy and scipy."""
  config, elbo_family, state, images_u8 = trained_vae
  iwae_family = build_family(_config("vae", **{**config.to_dict(), "objective": "iwae",
                                               "num_importance_samples": 1}), IMAGE_SHAPE)
  x = jnp.asarray(images_u8, jnp.float32) / 255.0
  key = jax.random.PRNGKey(3)
  iwae_loss, _ = jax.jit(iwae_family.loss)(state.params, x, None, key)
  elbo_loss, elbo_parts = jax.jit(elbo_family.loss)(state.params, x, None, key)

  mean, logvar = (np.asarray(a, np.float64) for a in
                  elbo_family.model.apply(state.params, x, method="encode"))
  eps = np.asarray(jax.random.normal(key, (1, *mean.shape)), np.float64)[0]
  z = mean + np.exp(0.5 * logvar) * eps
  logits = np.asarray(elbo_family.model.apply(state.params, jnp.asarray(z, jnp.float32),
                                              method="decode"), np.float64).reshape(16, -1)
  xs = np.asarray(x, np.float64).reshape(16, -1)
  recon = np.sum(xs * np.logaddexp(0, -logits) + (1 - xs) * np.logaddexp(0, logits), axis=1)
  log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(1)
  log_p = stats.norm.logpdf(z).sum(1)
  monte_carlo_neg_elbo = np.mean(recon + log_q - log_p)
  np.testing.assert_allclose(iwae_loss, monte_carlo_neg_elbo, rtol=1e-5)
  # The same z: the ELBO objective's reconstruction term is this one (its KL is analytic).
  np.testing.assert_allclose(elbo_parts["recon"], recon.mean(), rtol=1e-5)
  assert not np.isclose(float(iwae_loss), float(elbo_loss), rtol=1e-4)  # MC KL ≠ analytic KL.


def test_iwae_with_one_sample_equals_vae_loss_in_expectation(trained_vae):
  """E_ε[L_1 loss] = the analytic-KL negative ELBO's expectation: over 400 keys the mean of
  their difference is within 4 standard errors of 0 (and the test can see a 1-nat bias)."""
  config, elbo_family, state, images_u8 = trained_vae
  iwae_family = build_family(_config("vae", **{**config.to_dict(), "objective": "iwae",
                                               "num_importance_samples": 1}), IMAGE_SHAPE)
  x = jnp.asarray(images_u8, jnp.float32) / 255.0
  keys = jax.random.split(jax.random.PRNGKey(4), 400)
  both = jax.jit(jax.vmap(lambda k: (iwae_family.loss(state.params, x, None, k)[0],
                                     elbo_family.loss(state.params, x, None, k)[0])))
  iwae_losses, elbo_losses = (np.asarray(a, np.float64) for a in both(keys))
  diff = iwae_losses - elbo_losses  # Same z per key: only log q − log p vs the analytic KL.
  standard_error = diff.std(ddof=1) / math.sqrt(len(diff))
  assert 0 < standard_error < 0.25, standard_error
  assert abs(diff.mean()) < 4 * standard_error, (diff.mean(), standard_error)


def test_iwae_bound_is_above_the_elbo_and_grows_with_k(trained_vae):
  config, family, state, images_u8 = trained_vae
  log_w = np.asarray(jax.jit(family.log_importance_weights, static_argnums=4)(
      state, images_u8, None, jax.random.PRNGKey(5), 600), np.float64)  # [600, 16]
  assert log_w.shape == (600, 16)
  bound = lambda group: np.asarray(vae_losses.iwae_bound(jnp.asarray(group)), np.float64)
  # Independent groups of k samples: E[L_k] estimated per image from 600 / k groups.
  l1 = log_w.mean(0)
  l5 = np.mean([bound(log_w[i:i + 5]) for i in range(0, 600, 5)], axis=0)
  l50 = np.mean([bound(log_w[i:i + 50]) for i in range(0, 600, 50)], axis=0)
  assert np.mean(l5 - l1) > 0.5 and np.mean(l50 - l5) > 0.2, (l1.mean(), l5.mean(), l50.mean())
  assert np.all(l5 >= l1) and np.all(l50 >= l5)  # Jensen, group by group.
  # The family's loss with objective iwae is −mean L_k of its own k samples (k = 5 here).
  iwae_family = build_family(_config("iwae", **{**config.to_dict(), "objective": "iwae",
                                                "num_importance_samples": 5}), IMAGE_SHAPE)
  x = jnp.asarray(images_u8, jnp.float32) / 255.0
  key = jax.random.PRNGKey(6)
  loss, parts = iwae_family.loss(state.params, x, None, key)
  own = np.asarray(family.log_importance_weights(state, images_u8, None, key, 5), np.float64)
  np.testing.assert_allclose(loss, -np.mean(bound(own)), rtol=1e-5)
  np.testing.assert_allclose(parts["neg_elbo"], -own.mean(), rtol=1e-5)
  assert float(loss) < float(parts["neg_elbo"])


# ----------------------------------------------------------------------------- the sample z


@pytest.fixture(scope="module")
def seed_vae():
  """The seed's MLP VAE (configs/vae.py) at its full size, freshly initialised."""
  family = build_family(_config("vae"), IMAGE_SHAPE)
  return family, _init(family, 2)


def test_vae_decoder_sees_reparameterised_sample(seed_vae):
  """The family's loss decodes z = μ + σ·ε (not μ, as the seed code did) with ε ~ N(0, I) from
  its key, and the encoder matches a numpy forward pass."""
  family, state = seed_vae
  images = jax.random.uniform(jax.random.PRNGKey(9), (64, 28, 28, 1))
  captured = {}

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, mlp.Decoder) and context.method_name == "__call__":
      captured["z"] = args[0]
    if isinstance(context.module, mlp.Encoder) and context.method_name == "__call__":
      captured["encoded"] = next_fun(*args, **kwargs)
      return captured["encoded"]
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    loss, parts = family.loss(state.params, images, None, jax.random.PRNGKey(10))
  mean, logvar = captured["encoded"]
  z = np.asarray(captured["z"], np.float64)
  mean_np, logvar_np = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
  assert z.shape == mean.shape == logvar.shape == (64, 32)
  assert not np.allclose(z, mean_np)  # The decoder must not see μ.
  eps = (z - mean_np) / np.exp(0.5 * logvar_np)  # z = μ + σ·ε ⇒ ε ~ N(0, I).
  assert abs(eps.mean()) < 0.1 and abs(eps.std() - 1.0) < 0.1
  # The loss's reconstruction term is that of the decoder applied to that z.
  logits = family.model.apply(state.params, captured["z"], method=mlp.VAE.decode)
  assert logits.shape == (64, 28, 28, 1)
  x = np.asarray(images, np.float64).reshape(64, -1)
  l = np.asarray(logits, np.float64).reshape(64, -1)
  recon = np.sum(np.logaddexp(0, -l) * x + np.logaddexp(0, l) * (1 - x), axis=1)
  np.testing.assert_allclose(parts["recon"], recon.mean(), rtol=1e-5)
  # Encoder output matches a numpy forward pass (ReLU hidden, linear heads).
  enc = state.params["params"]["encoder"]
  h = np.maximum(0.0, x @ np.asarray(enc["Dense_0"]["kernel"]) + np.asarray(enc["Dense_0"]["bias"]))
  np.testing.assert_allclose(mean_np, h @ np.asarray(enc["mean"]["kernel"])
                             + np.asarray(enc["mean"]["bias"]), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(logvar_np, h @ np.asarray(enc["logvar"]["kernel"])
                             + np.asarray(enc["logvar"]["bias"]), rtol=1e-4, atol=1e-5)


def test_vae_sample_key_changes_loss_not_encoding(seed_vae):
  family, state = seed_vae
  images = jax.random.uniform(jax.random.PRNGKey(11), (4, 28, 28, 1))
  loss = lambda seed: family.loss(state.params, images, None, jax.random.PRNGKey(seed))[1]
  a, b = loss(0), loss(1)
  assert not np.allclose(a["recon"], b["recon"])
  np.testing.assert_array_equal(a["kl"], b["kl"])  # Analytic KL: a function of the encoding.
  np.testing.assert_array_equal(loss(0)["recon"], a["recon"])  # Same key, same sample.
  encode = lambda: family.model.apply(state.params, images, method=mlp.VAE.encode)
  for x, y in zip(encode(), encode()):
    np.testing.assert_array_equal(x, y)  # The module itself is deterministic.


# ----------------------------------------------------------------------------- labels


@pytest.mark.parametrize("name", ["cvae", pytest.param("conv_cvae", marks=pytest.mark.slow)])
def test_labels_change_the_networks_outputs(name):
  config = (make_tiny_zoo_config("cvae") if name == "cvae"
            else make_tiny_conv_vae_config(conditional=True, model=name))
  family = build_family(config, IMAGE_SHAPE, num_classes=10)
  assert family.num_classes == 10
  state = _init(family)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, config.latent_dim))
  images = jax.random.randint(jax.random.PRNGKey(1), (2, *IMAGE_SHAPE), 0, 256).astype(jnp.uint8)
  decode = lambda label: family.generate(state, {"z": z, "label": jnp.full((2,), label)})
  encode = lambda label: family.model.apply(state.params, images.astype(jnp.float32) / 255,
                                            jnp.full((2,), label), method="encode")[0]
  assert not np.allclose(decode(0), decode(7))  # Decoder takes the label ...
  assert not np.allclose(encode(0), encode(7))  # ... and so does the encoder.
  np.testing.assert_array_equal(decode(3), decode(3))
  with pytest.raises(ValueError, match="labels"):
    family.model.apply(state.params, z, method="decode")


def test_unconditional_ignores_labels_and_conditional_grid_has_one_row_per_class():
  config = make_tiny_zoo_config("vae")
  family = build_family(config, IMAGE_SHAPE, num_classes=10)
  assert family.num_classes == 0
  state = _init(family)
  images = jnp.full((3, *IMAGE_SHAPE), 77, jnp.uint8)
  np.testing.assert_array_equal(family.reconstruct(state, images, jnp.array([1, 2, 3])),
                                family.reconstruct(state, images, None))
  latents, cols = family.grid_latents(jax.random.PRNGKey(0), 64)
  latent_dim = config.latent_dim
  assert cols is None and latents.shape == (64, latent_dim)
  cvae = build_family(make_tiny_zoo_config("cvae"), IMAGE_SHAPE, num_classes=10)
  latents, cols = cvae.grid_latents(jax.random.PRNGKey(0), 64)
  assert cols == 6 and latents["z"].shape == (60, latent_dim)
  np.testing.assert_array_equal(latents["label"], np.repeat(np.arange(10), 6))
  assert cvae.generate(_init(cvae), latents).shape == (60, *IMAGE_SHAPE)
  drawn = cvae.sample_latents(jax.random.PRNGKey(1), 500)
  assert drawn["z"].shape == (500, latent_dim) and set(np.asarray(drawn["label"])) == set(range(10))


# ----------------------------------------------------------------------------- one-line errors


def test_unknown_or_non_vae_architecture_is_one_line():
  with pytest.raises(UserError, match="mlp") as error:
    build_family(_config("vae", architecture="resnet9"), IMAGE_SHAPE)
  assert "\n" not in str(error.value) and "resnet9" in str(error.value)
  assert set(models.available()) >= {"mlp", "conv_vae"}


# ----------------------------------------------------------------------------- training


class _Classifier:
  """A softmax regression on pixels, trained on 512 real digits: judges generated classes."""

  def __init__(self, images_u8, labels):
    x = jnp.asarray(images_u8, jnp.float32).reshape(len(images_u8), -1) / 255.0
    y = jnp.asarray(labels)

    def loss(w):
      logits = x @ w["w"] + w["b"]
      return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)) + 1e-3 * jnp.sum(
          w["w"] ** 2)

    tx = optax.adam(0.01)
    weights = {"w": jnp.zeros((784, 10)), "b": jnp.zeros(10)}
    opt = tx.init(weights)

    @jax.jit
    def step(weights, opt):
      grads = jax.grad(loss)(weights)
      updates, opt = tx.update(grads, opt)
      return optax.apply_updates(weights, updates), opt

    for _ in range(300):
      weights, opt = step(weights, opt)
    self.weights = weights

  def predict(self, images):
    x = jnp.asarray(images, jnp.float32).reshape(len(images), -1)
    return np.asarray(jnp.argmax(x @ self.weights["w"] + self.weights["b"], axis=1))


def test_cvae_draws_the_class_it_is_asked_for(digits):
  """A small cvae (z ∈ R², so the label must carry the class) trained 600 steps on 512
  digits; its samples for each asked class are judged by a classifier trained on the same
  digits. Were the label ignored, the asked class would be hit about 1 time in 10 (planted
  once: the same run with conditional=False scores ≈ 0.1)."""
  images, labels = digits
  classifier = _Classifier(images, labels)
  assert np.mean(classifier.predict(images / 255.0) == labels) > 0.9
  config = make_tiny_vae_config(conditional=True, encoder_hidden=(128,), decoder_hidden=(128,),
                                latent_dim=2, batch_size=64)
  family = build_family(config, IMAGE_SHAPE, num_classes=10)
  mesh = sharding.make_mesh()
  state = jax.jit(lambda k: family.init_state(k, 512, IMAGE_SHAPE),
                  out_shardings=sharding.replicated(mesh))(jax.random.PRNGKey(0))
  data = placement.place_resident(images, labels, mesh)
  multi_step = compiled.build(family, config, mesh, compiled.layout_for(family, config, mesh,
                                                                        512))
  for _ in range(12):
    state, _ = multi_step(state, data, 50)
  asked = jnp.repeat(jnp.arange(10, dtype=jnp.int32), 20)
  z = jax.random.normal(jax.random.PRNGKey(1), (200, 2))
  samples = np.asarray(family.generate(state, {"z": z, "label": asked}))
  predicted = classifier.predict(samples)
  accuracy = float(np.mean(predicted == np.asarray(asked)))
  assert accuracy > 0.6, (accuracy, predicted.reshape(10, 20))
  # Every class is drawn when asked (not one class reaching 60% on its own).
  per_class = (predicted == np.asarray(asked)).reshape(10, 20).mean(1)
  assert np.sum(per_class > 0.3) >= 8, per_class


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


@pytest.mark.slow
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
