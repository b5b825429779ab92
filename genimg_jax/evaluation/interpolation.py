"""Latent interpolation grids: each row walks from one latent to another in `cols` steps.

Gaussian latents z ~ N(0, I) concentrate on a shell of radius ≈ √L, which a straight line
between two of them leaves (its midpoint has norm ≈ √(L/2)); spherical interpolation
slerp(z₀, z₁; t) = sin((1−t)θ)/sin θ · z₀ + sin(tθ)/sin θ · z₁, cos θ = z₀·z₁ / (‖z₀‖‖z₁‖)
stays on it (White 2016). Conditional latents keep each row's label fixed.
"""

import jax
import jax.numpy as jnp


def slerp(z0: jnp.ndarray, z1: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
  """Spherical interpolation of rows z0, z1 [..., L] at fractions t [T] → [..., T, L];
  falls back to the straight line where z0 and z1 are (anti)parallel (sin θ ≈ 0)."""
  z0, z1 = z0[..., None, :], z1[..., None, :]
  t = t[:, None]
  cos = jnp.sum(z0 * z1, -1, keepdims=True) / (
      jnp.linalg.norm(z0, axis=-1, keepdims=True) * jnp.linalg.norm(z1, axis=-1, keepdims=True))
  theta = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
  sin = jnp.sin(theta)
  safe = jnp.where(sin > 1e-6, sin, 1.0)
  spherical = (jnp.sin((1.0 - t) * theta) * z0 + jnp.sin(t * theta) * z1) / safe
  return jnp.where(sin > 1e-6, spherical, (1.0 - t) * z0 + t * z1)


def interpolation_latents(family, key, rows: int = 8, cols: int = 10):
  """Latents for a rows × cols grid (row-major): slerp between two prior draws per row."""
  start_key, end_key = jax.random.split(key)
  start, end = family.sample_latents(start_key, rows), family.sample_latents(end_key, rows)
  t = jnp.linspace(0.0, 1.0, cols)
  if isinstance(start, dict):  # Conditional: interpolate z, keep the row's label.
    z = slerp(start["z"], end["z"], t).reshape(rows * cols, -1)
    return {**start, "z": z, "label": jnp.repeat(start["label"], cols)}
  return slerp(start, end, t).reshape(rows * cols, -1)


def interpolation_images(family, state, key, rows: int = 8, cols: int = 10):
  """Images float32 [rows · cols, H, W, C] in [0, 1] of the interpolation grid's latents."""
  return family.generate(state, interpolation_latents(family, key, rows, cols))
