"""IWAE / ELBO estimates against a linear-Gaussian model whose marginal p(x) is known exactly.

p(z) = N(0, I_L), p(x|z) = N(Wz + b, σ²I_D) ⇒ p(x) = N(b, WWᵀ + σ²I). W has orthogonal
columns, so the exact posterior is diagonal: Σ = (I + WᵀW/σ²)⁻¹, μ = Σ Wᵀ(x − b)/σ².
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax.evaluation import likelihood
from genimg_jax.losses import vae as vae_losses

D, L, SIGMA = 6, 3, 0.7


def _model(seed=0):
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(D, L)))
  w = q * np.array([1.5, 1.0, 0.6])  # Orthogonal columns of different lengths.
  b = rng.normal(size=D) * 0.3
  z = rng.normal(size=(5, L))
  x = z @ w.T + b + SIGMA * rng.normal(size=(5, D))
  return w, b, x


def _exact_log_px(w, b, x):
  cov = w @ w.T + SIGMA**2 * np.eye(D)
  diff = x - b
  _, logdet = np.linalg.slogdet(cov)
  return -0.5 * (D * math.log(2 * math.pi) + logdet
                 + np.einsum("bi,ij,bj->b", diff, np.linalg.inv(cov), diff))


def _posterior(w, b, x):
  var = 1.0 / (1.0 + np.sum(w * w, axis=0) / SIGMA**2)  # [L]: WᵀW is diagonal.
  mean = (x - b) @ w / SIGMA**2 * var  # [B, L]
  return mean, np.log(np.broadcast_to(var, mean.shape))


def _log_weights_fn(w, b, mean_shift=0.0, logvar_shift=0.0):
  """log w = log p(x|z) + log p(z) − log q(z|x) via losses.vae, with the encoder q(z|x) =
  N(posterior mean + mean_shift, posterior variance · e^logvar_shift) computed per batch."""
  w32, b32 = jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)
  var = 1.0 / (1.0 + jnp.sum(w32 * w32, axis=0) / SIGMA**2)

  def fn(x, key, k):
    x = jnp.asarray(x, jnp.float32)
    mean = (x - b32) @ w32 / SIGMA**2 * var + mean_shift  # [B, L]
    logvar = jnp.broadcast_to(jnp.log(var) + logvar_shift, mean.shape)
    eps = jax.random.normal(key, (k, *mean.shape))
    z = mean + jnp.exp(0.5 * logvar) * eps  # [k, B, L]
    recon_nll = -vae_losses.log_normal(x, z @ w32.T + b32, jnp.full((D,), 2 * math.log(SIGMA)))
    return vae_losses.log_importance_weights(recon_nll, z, mean, logvar)

  return jax.jit(fn, static_argnums=2)


def _closed_form_elbo(w, b, x, mean, logvar):
  """E_q[log p(x|z) + log p(z)] + H(q) for a diagonal Gaussian q (exact)."""
  s2 = np.exp(logvar)
  resid = x - mean @ w.T - b
  e_recon = -0.5 * D * math.log(2 * math.pi * SIGMA**2) - (
      np.sum(resid**2, 1) + s2 @ np.sum(w * w, axis=0)) / (2 * SIGMA**2)
  e_prior = -0.5 * L * math.log(2 * math.pi) - 0.5 * np.sum(mean**2 + s2, 1)
  entropy = 0.5 * np.sum(1 + math.log(2 * math.pi) + logvar, 1)
  return e_recon + e_prior + entropy


SHIFTS = (0.4, 0.8)  # q's mean and log-variance off the true posterior: the bounds are strict.


def test_exact_posterior_gives_the_exact_log_likelihood_for_every_sample():
  w, b, x = _model()
  fn = _log_weights_fn(w, b)
  bound, elbo = likelihood.importance_bounds(fn, x, jax.random.PRNGKey(0), num_samples=7)
  np.testing.assert_allclose(bound, _exact_log_px(w, b, x), rtol=1e-5)
  np.testing.assert_allclose(elbo, _exact_log_px(w, b, x), rtol=1e-5)


def test_iwae_k1_is_the_elbo_in_expectation_and_increases_with_k():
  w, b, x = _model()
  mean, logvar = _posterior(w, b, x)
  mean, logvar = mean + SHIFTS[0], logvar + SHIFTS[1]
  fn = _log_weights_fn(w, b, *SHIFTS)
  exact_elbo, log_px = _closed_form_elbo(w, b, x, mean, logvar), _exact_log_px(w, b, x)
  assert np.all(exact_elbo < log_px - 0.5)  # q is far enough off for the gaps to show.
  repeats = 400
  means = {}
  for k in (1, 4, 32):
    tiled = np.tile(x, (repeats, 1))  # Each row repeated: independent draws per copy.
    runs = likelihood.importance_bounds(fn, tiled, jax.random.PRNGKey(k), k,
                                        batch_size=len(tiled))[0].reshape(repeats, len(x))
    means[k] = runs.mean(0)
    if k == 1:
      stderr = runs.std(0) / math.sqrt(repeats)
      assert np.all(np.abs(means[1] - exact_elbo) < 4 * stderr), (means[1], exact_elbo, stderr)
  assert np.all(means[1] < means[4]) and np.all(means[4] < means[32])
  assert np.all(means[32] < log_px + 0.05)  # L_k ≤ log p(x), up to the mean's sampling error.
  assert np.all(log_px - means[32] < 0.5 * (log_px - means[1]))  # And already much closer.


@pytest.mark.slow
def test_iwae_at_large_k_matches_the_exact_log_likelihood():
  w, b, x = _model(seed=1)
  fn = _log_weights_fn(w, b, *SHIFTS)
  report = likelihood.likelihood_report(fn, x, jax.random.PRNGKey(1), num_samples=5000,
                                        batch_size=3, chunk=700)
  nll = -float(np.mean(_exact_log_px(w, b, x)))
  assert report["iwae_nll"] == pytest.approx(nll, abs=0.03)
  assert report["iwae_neg_elbo"] > nll + 0.5
  assert report["iwae_bits_per_dim"] == pytest.approx(report["iwae_nll"] / (D * math.log(2)))


def test_chunks_combine_exactly_and_stably():
  # Hand-written weights around −10⁴: exp underflows in float32 without the max shift.
  seen = []

  def fn(images, key, k):
    log_w = -1.0e4 + 50.0 * jax.random.uniform(key, (k, len(images))) + jnp.arange(len(images))
    seen.append(np.asarray(log_w, np.float64))
    return log_w

  images = np.zeros((3, 2, 2, 1), np.float32)
  bound, elbo = likelihood.importance_bounds(fn, images, jax.random.PRNGKey(2), num_samples=10,
                                             batch_size=3, chunk=4)
  assert [s.shape[0] for s in seen] == [4, 4, 2]
  all_w = np.concatenate(seen)  # [10, 3]
  top = all_w.max(0)
  expected = top + np.log(np.exp(all_w - top).sum(0)) - math.log(10)
  np.testing.assert_allclose(bound, expected, rtol=1e-6)
  np.testing.assert_allclose(elbo, all_w.mean(0), rtol=1e-6)
