"""pythae's IWAE row (configs/iwae_pythae.py): the script's settings, the k-sample bound on its
tanh networks (at k = 1 the one-sample ELBO on the same ε; at k = 50 the log-mean-exp of the
weights recomputed with numpy), Adam's ε reaching the update, and a tiny run end to end."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genimg_jax.config_cli import load_config
from genimg_jax.data import embedded
from genimg_jax.train import optim, run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_zoo_config
from tests.test_vamp import train_and_score

IMAGE_SHAPE = (28, 28, 1)
STEPS_PER_EPOCH = 50_000 // 20


def _np(x):
  return np.asarray(x, np.float64)


@pytest.fixture(scope="module")
def pythae_iwae():
  """(config, family at k = 50, params, 12 binary digits in [0, 1]) at the real widths."""
  config = load_config("iwae_pythae")
  family = build_family(config, IMAGE_SHAPE)
  params = jax.jit(lambda k: family.init_state(k, 16, IMAGE_SHAPE).params)(jax.random.PRNGKey(0))
  images, _ = embedded.load("train")
  return config, family, params, (np.asarray(images[:12]) > 127).astype(np.float32)


def test_config_is_the_scripts():
  config = load_config("iwae_pythae")
  run_config.validate(config)
  assert (config.architecture, config.activation, config.objective) == ("mlp2", "tanh", "iwae")
  assert config.encoder_hidden == config.decoder_hidden == (200, 200)
  assert (config.latent_dim, config.num_importance_samples, config.batch_size) == (50, 50, 20)
  assert (config.optimizer, config.learning_rate, config.adam_eps) == ("adam", 1e-3, 1e-4)
  assert config.lr_boundaries == tuple(m * STEPS_PER_EPOCH
                                       for m in (2, 5, 14, 28, 41, 122, 365, 1094))
  assert config.lr_decay_factor == 10 ** (-1 / 7)
  assert config.num_steps == 3_280 * STEPS_PER_EPOCH == 8_200_000
  assert (config.dataset, config.binarize) == ("binarized_mnist", "none")


def _log_weights_np(family, params, images, key, k):
  """log p(x|z_i) + log N(z_i; 0, I) − log N(z_i; μ, σ²) [k, B], z_i = μ + σ·ε_i, ε from `key`
  as the family draws it, the networks' outputs taken from Flax, the rest in numpy."""
  mean, logvar = family.model.apply(params, images, None, method="encode")
  eps = _np(jax.random.normal(key, (k, *mean.shape)))
  mean, logvar = _np(mean), _np(logvar)
  z = mean + np.exp(0.5 * logvar) * eps
  x = _np(images).reshape(len(images), -1)
  log_w = []
  for i in range(k):
    logits = _np(family.model.apply(params, jnp.asarray(z[i], jnp.float32), None,
                                    method="decode")).reshape(len(images), -1)
    log_px = -np.sum(np.logaddexp(0, -logits) * x + np.logaddexp(0, logits) * (1 - x), 1)
    log_pz = -0.5 * np.sum(np.log(2 * np.pi) + z[i] ** 2, 1)
    log_qz = -0.5 * np.sum(np.log(2 * np.pi) + logvar + eps[i] ** 2, 1)
    log_w.append(log_px + log_pz - log_qz)
  return np.stack(log_w)


def test_the_bound_at_one_sample_is_the_elbo_on_the_same_eps(pythae_iwae):
  config, _, params, images = pythae_iwae
  with config.unlocked():
    config.num_importance_samples = 1
  family = build_family(config, IMAGE_SHAPE)
  key = jax.random.PRNGKey(3)
  loss, parts = family.loss(params, images, None, key)
  elbo = _log_weights_np(family, params, images, key, 1)[0]
  np.testing.assert_allclose(loss, -np.mean(elbo), rtol=1e-5)
  np.testing.assert_allclose(parts["neg_elbo"], -np.mean(elbo), rtol=1e-5)


def test_the_bound_at_fifty_samples_is_the_log_mean_of_the_weights(pythae_iwae):
  _, family, params, images = pythae_iwae
  assert family.num_importance_samples == 50
  key = jax.random.PRNGKey(4)
  loss, parts = family.loss(params, images, None, key)
  log_w = _log_weights_np(family, params, images, key, 50)
  m = log_w.max(0)
  bound = m + np.log(np.mean(np.exp(log_w - m), 0))
  np.testing.assert_allclose(loss, -np.mean(bound), rtol=1e-5)
  np.testing.assert_allclose(parts["neg_elbo"], -np.mean(log_w), rtol=1e-5)
  assert float(loss) < float(parts["neg_elbo"])  # L_50 ≥ the ELBO.


def test_adam_eps_reaches_adam():
  """Two steps of Adam(lr, β1, β2, ε) against PyTorch's closed form: m̂ / (√v̂ + ε)."""
  lr, b1, b2 = 0.1, 0.9, 0.999
  theta0, grads = np.array([1.0, -2.0]), [np.array([1e-3, 2.0]), np.array([-3e-4, 1.0])]
  for eps in (1e-4, 1e-8):
    opt = optim.build("adam", {"learning_rate": lr, "adam_b1": b1, "adam_b2": b2,
                               "adam_eps": eps})
    theta = jnp.asarray(theta0, jnp.float32)
    state = opt.init(theta)
    m = v = np.zeros(2)
    expected = theta0.copy()
    for t, g in enumerate(grads, 1):
      updates, state = opt.update(jnp.asarray(g, jnp.float32), state, theta)
      theta = optax.apply_updates(theta, updates)
      m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
      expected = expected - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
      np.testing.assert_allclose(theta, expected, rtol=1e-5)  # ε = 1e-4 moves it by 1e-2.
  # Without "adam_eps" (the GANs' hyper-parameters) Adam keeps optax's ε = 1e-8.
  plain = optim.build("adam", {"learning_rate": lr, "adam_b1": b1, "adam_b2": b2})
  given = optim.build("adam", {"learning_rate": lr, "adam_b1": b1, "adam_b2": b2,
                               "adam_eps": 1e-8})
  g = jnp.asarray([1e-7, 1.0], jnp.float32)
  np.testing.assert_array_equal(plain.update(g, plain.init(g))[0],
                                given.update(g, given.init(g))[0])


def test_the_family_steps_with_the_configs_eps():
  """The family's optimiser is Adam with config.adam_eps: its first update is lr·g/(|g| + ε)."""
  config = make_tiny_zoo_config("iwae_pythae", dataset="mnist_embedded")
  family = build_family(config, IMAGE_SHAPE)
  assert family.hyperparameters["adam_eps"] == 1e-4
  params = {"w": jnp.zeros(3)}
  g = {"w": jnp.asarray([1e-4, 1e-2, -1.0])}
  opt = family.optimizer(family.hyperparameters)
  updates, _ = opt.update(g, opt.init(params), params)
  np.testing.assert_allclose(updates["w"], -1e-3 * _np(g["w"]) / (np.abs(_np(g["w"])) + 1e-4),
                             rtol=1e-5)


@pytest.mark.slow
def test_iwae_pythae_trains_and_reports_an_nll(tmp_path):
  _, record = train_and_score(
      "iwae_pythae", ["--config.encoder_hidden=16,16", "--config.decoder_hidden=16,16",
                      "--config.latent_dim=4"], str(tmp_path / "run"), str(tmp_path / "cache"))
  assert 100 < record["test_neg_elbo"] < 800 and math.isfinite(record["iwae_nll"]), record
