"""VAE test likelihood by importance sampling: the IWAE bound with k samples, and the ELBO.

With log w_i = log p(x, z_i) − log q(z_i|x), z_i ~ q(z|x):
  ELBO ≈ (1/k) Σ_i log w_i           (the mean of k one-sample estimates)
  L_k  = log (1/k) Σ_i w_i ≤ log p(x)  (Burda et al. 2015; increases with k, → log p(x))
NLL = −L_k in nats per image; bits/dim = NLL / (D · ln 2), D = pixels × channels.
k (up to thousands) is split into chunks of `chunk` samples to bound memory; the chunks'
log-sum-exps are combined with a running max shift m:  S ← S·e^{m_old − m} + Σ_i e^{log w_i − m},
L_k = m + log S − log k, all in float32 without overflow or underflow of the largest terms.
"""

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

# log_weights_fn(images [B, ...], key, k) → log w [k, B].
LogWeightsFn = Callable[[jnp.ndarray, jnp.ndarray, int], jnp.ndarray]


@jax.jit
def _combine(running_max, running_sum, log_weights):
  """One chunk into the running (max m [B], Σ e^{log w − m} [B]); log_weights [c, B]."""
  new_max = jnp.maximum(running_max, jnp.max(log_weights, axis=0))
  rescaled = running_sum * jnp.exp(running_max - new_max)  # exp(−inf) = 0 for the first chunk.
  return new_max, rescaled + jnp.sum(jnp.exp(log_weights - new_max), axis=0)


def importance_bounds(log_weights_fn: LogWeightsFn, images: np.ndarray, key, num_samples: int,
                      batch_size: int = 100, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
  """Per-image (IWAE bound L_k [N], ELBO estimate [N]) in nats, from k = num_samples weights.

  Images are processed `batch_size` at a time and samples `chunk` at a time; batch b, chunk c
  uses key fold_in(fold_in(key, b), c), so the result does not depend on memory settings
  except through which samples are drawn.
  """
  if num_samples < 1:
    raise ValueError(f"num_samples must be >= 1, got {num_samples}")
  bounds, elbos = [], []
  for b, start in enumerate(range(0, len(images), batch_size)):
    batch = images[start:start + batch_size]
    batch_key = jax.random.fold_in(key, b)
    m = jnp.full((len(batch),), -jnp.inf, jnp.float32)
    s = jnp.zeros((len(batch),), jnp.float32)
    total = jnp.zeros((len(batch),), jnp.float32)
    for c, c_start in enumerate(range(0, num_samples, chunk)):
      size = min(chunk, num_samples - c_start)
      log_w = jnp.asarray(log_weights_fn(batch, jax.random.fold_in(batch_key, c), size),
                          jnp.float32)  # [size, B]
      m, s = _combine(m, s, log_w)
      total = total + jnp.sum(log_w, axis=0)
    bounds.append(np.asarray(m + jnp.log(s) - math.log(num_samples)))
    elbos.append(np.asarray(total / num_samples))
  return np.concatenate(bounds), np.concatenate(elbos)


def bits_per_dim(nll_nats: float, image_shape) -> float:
  """NLL / (D · ln 2), D = H · W · C."""
  return float(nll_nats) / (int(np.prod(image_shape)) * math.log(2.0))


def likelihood_report(log_weights_fn: LogWeightsFn, images: np.ndarray, key, num_samples: int,
                      batch_size: int = 100, chunk: int = 500,
                      image_shape=None) -> dict[str, float]:
  """Test-set means: IWAE NLL −L_k and −ELBO in nats per image and bits/dim, and k.

  `images` may be anything the function batches over (e.g. indices into the test set); then
  pass `image_shape` for bits/dim.
  """
  bound, elbo = importance_bounds(log_weights_fn, images, key, num_samples, batch_size, chunk)
  shape = images.shape[1:] if image_shape is None else image_shape
  nll, neg_elbo = -float(np.mean(bound)), -float(np.mean(elbo))
  return {"iwae_k": num_samples, "iwae_nll": nll, "iwae_bits_per_dim": bits_per_dim(nll, shape),
          "iwae_neg_elbo": neg_elbo, "iwae_neg_elbo_bits_per_dim": bits_per_dim(neg_elbo, shape)}
