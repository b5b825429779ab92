"""VAE losses (docs/formulas.md): per-image sums over pixels and latents, then the batch mean.

L = E_q[−log p(x|z)] + β·KL(q(z|x) ‖ N(0, I)), estimated with one sample z ~ q(z|x).
With β = 1 and the Bernoulli likelihood, L is the negative ELBO in nats per image.
(The seed writes L_recon − β·KL: the sign is wrong for a loss to minimise, seed defect 2.)
"""

import math

import jax
import jax.numpy as jnp


def _sum_per_example(x: jnp.ndarray) -> jnp.ndarray:
  """[B, ...] → [B]: sum over every axis but the batch."""
  return jnp.sum(x.reshape((x.shape[0], -1)), axis=1)


def kl_standard_normal(mean: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
  """KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²), per example [B]."""
  return -0.5 * _sum_per_example(1.0 + logvar - mean**2 - jnp.exp(logvar))


def bernoulli_nll(logits: jnp.ndarray, images: jnp.ndarray) -> jnp.ndarray:
  """−log p(x|z) = −Σ_pixels [x log σ(l) + (1 − x) log σ(−l)], per example [B], x ∈ [0, 1]."""
  return -_sum_per_example(images * jax.nn.log_sigmoid(logits)
                           + (1.0 - images) * jax.nn.log_sigmoid(-logits))


def gaussian_nll(logits: jnp.ndarray, images: jnp.ndarray, sigma: float) -> jnp.ndarray:
  """−log N(x; σ(l), σ²I) = Σ_pixels (x − σ(l))² / (2σ²) + (D/2)·log(2πσ²), per example [B]."""
  num_pixels = math.prod(images.shape[1:])
  squared_error = _sum_per_example((images - jax.nn.sigmoid(logits)) ** 2)
  return squared_error / (2.0 * sigma**2) + 0.5 * num_pixels * math.log(2.0 * math.pi * sigma**2)


def reconstruction_nll(logits, images, likelihood: str, gaussian_sigma: float) -> jnp.ndarray:
  """−log p(x|z) per example [B] under the named likelihood ("bernoulli" or "gaussian")."""
  if likelihood == "bernoulli":
    return bernoulli_nll(logits, images)
  if likelihood == "gaussian":
    return gaussian_nll(logits, images, gaussian_sigma)
  raise ValueError(f"unknown likelihood {likelihood!r}: use 'bernoulli' or 'gaussian'")


def vae_loss(logits, images, mean, logvar, beta: float, likelihood: str,
             gaussian_sigma: float) -> tuple[jnp.ndarray, dict]:
  """L = E_x[−log p(x|z) + β·KL(q(z|x) ‖ N(0, I))]; returns (L, {recon, kl, neg_elbo})."""
  recon = reconstruction_nll(logits, images, likelihood, gaussian_sigma)
  kl = kl_standard_normal(mean, logvar)
  loss = jnp.mean(recon + beta * kl)
  return loss, {"recon": jnp.mean(recon), "kl": jnp.mean(kl), "neg_elbo": jnp.mean(recon + kl)}


def log_normal(z: jnp.ndarray, mean: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
  """log N(z; μ, diag σ²) = −½ Σ_j [log 2π + log σ_j² + (z_j − μ_j)² / σ_j²], summed over the
  last axis: [..., L] → [...]."""
  return -0.5 * jnp.sum(math.log(2.0 * math.pi) + logvar + (z - mean) ** 2 * jnp.exp(-logvar),
                        axis=-1)


def log_importance_weights(recon_nll: jnp.ndarray, z: jnp.ndarray, mean: jnp.ndarray,
                           logvar: jnp.ndarray) -> jnp.ndarray:
  """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), with p(z) = N(0, I), q = N(μ, σ²).

  recon_nll: −log p(x|z_i) [k, B]; z: [k, B, L]; mean, logvar: [B, L] (q's parameters).
  Returns [k, B]. Their mean over i is a one-sample-per-i ELBO; log-mean-exp is the IWAE bound.
  """
  zeros = jnp.zeros_like(mean)
  return -recon_nll + log_normal(z, zeros, zeros) - log_normal(z, mean, logvar)


def iwae_bound(log_weights: jnp.ndarray) -> jnp.ndarray:
  """L_k = log (1/k) Σ_i w_i per example [B] from log w [k, B], computed stably:
  m + log Σ_i exp(log w_i − m) − log k with m = max_i log w_i (`jax.nn.logsumexp` does the
  max shift). L_k ≤ log p(x); it increases with k (Burda et al. 2015); L_1 is the ELBO sample."""
  k = log_weights.shape[0]
  return jax.nn.logsumexp(log_weights, axis=0) - math.log(k)
