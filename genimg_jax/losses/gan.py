"""GAN losses from discriminator logits l (D(x) = σ(l) where it is a probability), term by term
(docs/formulas.md). E_x and E_z are means over the batch.

log D = log σ(l) and log(1 − D) = log σ(−l) are computed with `jax.nn.log_sigmoid`, which is
exact for any logit; sigmoid-then-log saturates in float32 (seed defect 4).
`config.loss` picks a pair (L_D, L_G) from `GAN_LOSSES`; WGAN-GP adds `gradient_penalty` to L_D.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


def discriminator_loss(logits_real: jnp.ndarray, logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_D = −E_x[log D(x)] − E_z[log(1 − D(G(z)))]  (binary cross-entropy)."""
  return -jnp.mean(jax.nn.log_sigmoid(logits_real)) - jnp.mean(jax.nn.log_sigmoid(-logits_fake))


def generator_loss_non_saturating(logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_G = −E_z[log D(G(z))]  (non-saturating; the default)."""
  return -jnp.mean(jax.nn.log_sigmoid(logits_fake))


def generator_loss_minimax(logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_G = E_z[log(1 − D(G(z)))]  (the original minimax game; weak gradients early on)."""
  return jnp.mean(jax.nn.log_sigmoid(-logits_fake))


def discriminator_loss_hinge(logits_real: jnp.ndarray, logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_D = E_x[max(0, 1 − l(x))] + E_z[max(0, 1 + l(G(z)))]  (hinge; SNGAN, BigGAN)."""
  return jnp.mean(jax.nn.relu(1.0 - logits_real)) + jnp.mean(jax.nn.relu(1.0 + logits_fake))


def generator_loss_hinge(logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_G = −E_z[l(G(z))]  (hinge generator loss)."""
  return -jnp.mean(logits_fake)


def discriminator_loss_least_squares(logits_real: jnp.ndarray,
                                     logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_D = ½E_x[(l(x) − 1)²] + ½E_z[l(G(z))²]  (LSGAN, targets a = 0, b = 1)."""
  return 0.5 * jnp.mean((logits_real - 1.0) ** 2) + 0.5 * jnp.mean(logits_fake**2)


def generator_loss_least_squares(logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_G = ½E_z[(l(G(z)) − 1)²]  (LSGAN, target c = 1)."""
  return 0.5 * jnp.mean((logits_fake - 1.0) ** 2)


def discriminator_loss_wasserstein(logits_real: jnp.ndarray,
                                   logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_D = E_z[l(G(z))] − E_x[l(x)]  (the critic's Wasserstein loss, before the penalty)."""
  return jnp.mean(logits_fake) - jnp.mean(logits_real)


def generator_loss_wasserstein(logits_fake: jnp.ndarray) -> jnp.ndarray:
  """L_G = −E_z[l(G(z))]  (WGAN generator loss)."""
  return -jnp.mean(logits_fake)


def interpolate(real: jnp.ndarray, fake: jnp.ndarray, key) -> jnp.ndarray:
  """x̂ = αx + (1 − α)G(z) with α ~ U(0, 1) drawn once per example (shape [B, 1, 1, 1])."""
  alpha = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  return alpha * real + (1.0 - alpha) * fake


def gradient_penalty(critic: Callable[[jnp.ndarray], jnp.ndarray], x_hat: jnp.ndarray,
                     weight: float) -> jnp.ndarray:
  """λ·E_x̂[(‖∇_x̂ l(x̂)‖₂ − 1)²]  (WGAN-GP, Gulrajani et al. 2017; λ = `weight`).

  `critic` maps images [B, ...] to logits [B] with no coupling between examples, so the
  gradient of Σ_i l(x̂_i) holds each example's own ∇_x̂ l(x̂_i).
  """
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
  norms = jnp.sqrt(jnp.sum(grads.reshape((grads.shape[0], -1)) ** 2, axis=1))
  return weight * jnp.mean((norms - 1.0) ** 2)


class GANLoss(NamedTuple):
  """A discriminator and a generator loss; `probabilities`: σ(l) is D's probability of "real"."""

  discriminator: Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
  generator: Callable[[jnp.ndarray], jnp.ndarray]
  probabilities: bool


GAN_LOSSES = {  # config.loss → (L_D, L_G). "wgan_gp" also needs config.gp_weight > 0.
    "non_saturating": GANLoss(discriminator_loss, generator_loss_non_saturating, True),
    "minimax": GANLoss(discriminator_loss, generator_loss_minimax, True),
    "hinge": GANLoss(discriminator_loss_hinge, generator_loss_hinge, False),
    "least_squares": GANLoss(discriminator_loss_least_squares, generator_loss_least_squares,
                             False),
    "wgan_gp": GANLoss(discriminator_loss_wasserstein, generator_loss_wasserstein, False),
}
