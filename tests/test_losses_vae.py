"""The VAE losses against closed forms and hand computations in plain numpy and scipy: the KL
to the prior, the Bernoulli and Gaussian likelihoods, β weighting, log N, the importance
weights and the IWAE bound's stable log-mean-exp, gradients in float64."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy import stats

from genimg_jax.losses import vae as vae_losses

LN2 = math.log(2.0)


def _np_sigmoid(l):
  return 1.0 / (1.0 + np.exp(-np.asarray(l, np.float64)))


def test_kl_zero_at_prior():
  mean = jnp.zeros((3, 7))
  logvar = jnp.zeros((3, 7))
  kl = vae_losses.kl_standard_normal(mean, logvar)
  assert kl.shape == (3,)
  np.testing.assert_allclose(kl, np.zeros(3), atol=1e-7)


def test_kl_hand_computed():
  mean = jnp.array([[1.0, 2.0], [0.0, 0.0]])
  logvar = jnp.array([[0.0, math.log(4.0)], [0.0, 0.0]])
  expected_first = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(4.0) - 4 - 4))  # = 4 − ln 2
  assert expected_first == pytest.approx(4 - LN2)
  kl = vae_losses.kl_standard_normal(mean, logvar)
  np.testing.assert_allclose(kl, [expected_first, 0.0], rtol=1e-6, atol=1e-7)


def test_kl_matches_gaussian_kl_formula():
  # KL(N(μ, σ²) ‖ N(0, 1)) = log(1/σ) + (σ² + μ²)/2 − ½, summed over dimensions.
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(4, 5))
  logvar = rng.normal(size=(4, 5))
  sigma = np.exp(0.5 * logvar)
  expected = np.sum(np.log(1.0 / sigma) + (sigma**2 + mean**2) / 2 - 0.5, axis=1)
  got = vae_losses.kl_standard_normal(jnp.asarray(mean, jnp.float32),
                                      jnp.asarray(logvar, jnp.float32))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bernoulli_nll_matches_numpy_sum():
  rng = np.random.default_rng(1)
  logits = rng.normal(scale=3.0, size=(3, 4, 4, 1)).astype(np.float32)
  images = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)  # Non-binary x in [0, 1] too.
  images[0] = (images[0] > 0.5)  # And a binary one.
  p = _np_sigmoid(logits)
  x = images.astype(np.float64)
  expected = -np.sum((x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1), axis=1)
  got = vae_losses.bernoulli_nll(jnp.asarray(logits), jnp.asarray(images))
  assert got.shape == (3,)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  np.testing.assert_allclose(vae_losses.reconstruction_nll(logits, images, "bernoulli", 0.1),
                             expected, rtol=1e-5)


def test_bernoulli_nll_saturated_logits_stay_finite():
  logits = jnp.array([[100.0, -100.0]])
  images = jnp.array([[1.0, 0.0]])
  np.testing.assert_allclose(vae_losses.bernoulli_nll(logits, images), [0.0], atol=1e-6)
  np.testing.assert_allclose(vae_losses.bernoulli_nll(logits, 1.0 - images), [200.0], rtol=1e-6)


@pytest.mark.parametrize("sigma", [0.1, 1.0])
def test_gaussian_nll_matches_numpy_log_density(sigma):
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(2, 3, 3, 1)).astype(np.float32)
  images = rng.uniform(size=(2, 3, 3, 1)).astype(np.float32)
  mu = _np_sigmoid(logits)
  x = images.astype(np.float64)
  log_density = -0.5 * np.log(2 * np.pi * sigma**2) - (x - mu) ** 2 / (2 * sigma**2)
  expected = -np.sum(log_density.reshape(2, -1), axis=1)
  got = vae_losses.gaussian_nll(jnp.asarray(logits), jnp.asarray(images), sigma)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  np.testing.assert_allclose(vae_losses.reconstruction_nll(logits, images, "gaussian", sigma),
                             expected, rtol=1e-5)


def test_unknown_likelihood_raises():
  with pytest.raises(ValueError, match="likelihood"):
    vae_losses.reconstruction_nll(jnp.zeros((1, 2)), jnp.zeros((1, 2)), "poisson", 0.1)


def test_vae_loss_beta_weighting():
  rng = np.random.default_rng(3)
  logits = jnp.asarray(rng.normal(size=(4, 5, 5, 1)), jnp.float32)
  images = jnp.asarray(rng.uniform(size=(4, 5, 5, 1)), jnp.float32)
  mean = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
  logvar = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
  p = _np_sigmoid(np.asarray(logits))
  x = np.asarray(images, np.float64)
  recon = -np.sum((x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(4, -1), axis=1)
  m, lv = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
  kl = -0.5 * np.sum(1 + lv - m**2 - np.exp(lv), axis=1)
  elbos = []
  for beta in (0.0, 1.0, 4.0):
    loss, parts = vae_losses.vae_loss(logits, images, mean, logvar, beta, "bernoulli", 0.1)
    np.testing.assert_allclose(loss, np.mean(recon + beta * kl), rtol=1e-5)
    np.testing.assert_allclose(parts["recon"], np.mean(recon), rtol=1e-5)
    np.testing.assert_allclose(parts["kl"], np.mean(kl), rtol=1e-5)
    np.testing.assert_allclose(parts["neg_elbo"], np.mean(recon + kl), rtol=1e-5)
    elbos.append(float(parts["neg_elbo"]))
  assert elbos[0] == elbos[1] == elbos[2]  # β weights the loss only, never the ELBO.
  # The sign: larger KL with β > 0 must raise the loss (the seed code wrote L_recon − β·KL).
  loss1, _ = vae_losses.vae_loss(logits, images, mean, logvar, 1.0, "bernoulli", 0.1)
  loss4, _ = vae_losses.vae_loss(logits, images, mean, logvar, 4.0, "bernoulli", 0.1)
  assert float(loss4) > float(loss1)


def test_log_normal_matches_scipy():
  rng = np.random.default_rng(0)
  z, mean = rng.normal(size=(3, 5, 4)), rng.normal(size=(5, 4))
  logvar = rng.uniform(-3, 2, size=(5, 4))
  expected = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
  got = vae_losses.log_normal(jnp.asarray(z, jnp.float32), jnp.asarray(mean, jnp.float32),
                              jnp.asarray(logvar, jnp.float32))
  assert got.shape == (3, 5)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_log_importance_weights_match_scipy():
  rng = np.random.default_rng(1)
  k, b, latent = 4, 3, 2
  z, mean = rng.normal(size=(k, b, latent)), rng.normal(size=(b, latent))
  logvar, recon = rng.uniform(-1, 1, size=(b, latent)), rng.uniform(50, 100, size=(k, b))
  expected = (-recon + stats.norm.logpdf(z).sum(-1)
              - stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1))
  got = vae_losses.log_importance_weights(*(jnp.asarray(a, jnp.float32)
                                            for a in (recon, z, mean, logvar)))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_iwae_bound_is_a_stable_log_mean_exp():
  rng = np.random.default_rng(2)
  log_w = rng.normal(-20_000.0, 30.0, size=(50, 6))  # exp underflows: needs the max shift.
  m = log_w.max(0)
  expected = m + np.log(np.mean(np.exp(log_w - m), axis=0))
  got = vae_losses.iwae_bound(jnp.asarray(log_w, jnp.float32))
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  np.testing.assert_allclose(vae_losses.iwae_bound(jnp.asarray(log_w[:1])), log_w[0], rtol=1e-7)


# ----------------------------------------------------------------------------- gradients


def _x64_inputs(seed, *shapes):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=s), jnp.float64) for s in shapes]


def test_vae_loss_gradients_first_order(x64):
  logits, mean, logvar = _x64_inputs(5, (2, 3, 3, 1), (2, 4), (2, 4))
  images = jnp.asarray(np.random.default_rng(6).uniform(size=(2, 3, 3, 1)), jnp.float64)
  modes = ("fwd", "rev")
  check_grads(jax.jit(vae_losses.kl_standard_normal), (mean, logvar), order=1, modes=modes)
  check_grads(jax.jit(lambda l: vae_losses.bernoulli_nll(l, images)), (logits,), order=1,
              modes=modes)
  check_grads(jax.jit(lambda l: vae_losses.gaussian_nll(l, images, 0.5)), (logits,), order=1,
              modes=modes)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_loss_gradients_second_order(x64, likelihood):
  """Second order through the whole β-VAE loss (KL + reconstruction) for each likelihood."""
  logits, mean, logvar = _x64_inputs(7, (2, 3, 3, 1), (2, 4), (2, 4))
  images = jnp.asarray(np.random.default_rng(8).uniform(size=(2, 3, 3, 1)), jnp.float64)
  loss = lambda l, m, v: vae_losses.vae_loss(l, images, m, v, 2.0, likelihood, 0.5)[0]
  check_grads(loss, (logits, mean, logvar), order=2, modes=("fwd", "rev"))


def test_x64_was_restored():
  assert jnp.asarray(1.0).dtype == jnp.float32
