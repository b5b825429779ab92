"""GAN losses from discriminator logits l (D(x) = σ(l)), written term by term (SPEC §2).

log D = log σ(l) and log(1 − D) = log σ(−l) are computed with `jax.nn.log_sigmoid`, which is
exact for any logit; sigmoid-then-log saturates in float32 (seed defect 4).
E_x and E_z are means over the batch.
"""

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


GENERATOR_LOSSES = {
    "non_saturating": generator_loss_non_saturating,
    "minimax": generator_loss_minimax,
}
