"""Latent interpolation: slerp against its geometry (on the sphere, through the endpoints), and
the grid's rows walking between two prior draws with a fixed label."""

import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax.evaluation import interpolation


def test_slerp_stays_on_the_sphere_and_hits_the_endpoints():
  e1, e2 = jnp.array([[1.0, 0.0, 0.0]]), jnp.array([[0.0, 1.0, 0.0]])
  path = interpolation.slerp(e1, e2, jnp.linspace(0, 1, 5))[0]  # [5, 3]
  np.testing.assert_allclose(path[0], e1[0], atol=1e-6)
  np.testing.assert_allclose(path[-1], e2[0], atol=1e-6)
  np.testing.assert_allclose(path[2], np.array([1, 1, 0]) / np.sqrt(2), atol=1e-6)
  np.testing.assert_allclose(jnp.linalg.norm(path, axis=-1), 1.0, atol=1e-6)
  # Parallel endpoints fall back to the straight line (no division by sin θ = 0).
  same = interpolation.slerp(e1, 2 * e1, jnp.array([0.5]))[0, 0]
  np.testing.assert_allclose(same, [1.5, 0, 0], atol=1e-6)


class _PriorFamily:
  """sample_latents of a conditional family: z ~ N(0, I) in R^4 and a label in 0..9."""

  def sample_latents(self, key, num):
    z_key, y_key = jax.random.split(key)
    return {"z": jax.random.normal(z_key, (num, 4)),
            "label": jax.random.randint(y_key, (num,), 0, 10)}

  def generate(self, state, latents):
    return jnp.broadcast_to(latents["z"][:, :1, None, None], (len(latents["z"]), 2, 2, 1))


def test_grid_rows_walk_between_two_prior_draws_with_the_rows_label():
  family, key = _PriorFamily(), jax.random.PRNGKey(0)
  grid = interpolation.interpolation_latents(family, key, rows=3, cols=5)
  start_key, end_key = jax.random.split(key)
  start, end = family.sample_latents(start_key, 3), family.sample_latents(end_key, 3)
  z = np.asarray(grid["z"]).reshape(3, 5, 4)
  np.testing.assert_allclose(z[:, 0], start["z"], atol=1e-6)  # Each row starts at one draw ...
  np.testing.assert_allclose(z[:, -1], end["z"], atol=1e-6)  # ... and ends at another.
  np.testing.assert_array_equal(np.asarray(grid["label"]).reshape(3, 5),
                                np.repeat(np.asarray(start["label"])[:, None], 5, axis=1))
  # Inside a row: sin((1 − t)θ)/sin θ · z₀ + sin(tθ)/sin θ · z₁ (White 2016), here in numpy.
  z0, z1 = np.asarray(start["z"], np.float64), np.asarray(end["z"], np.float64)
  theta = np.arccos(np.sum(z0 * z1, 1) / (np.linalg.norm(z0, axis=1) * np.linalg.norm(z1, axis=1)))
  for j, t in enumerate(np.linspace(0, 1, 5)):
    expected = (np.sin((1 - t) * theta)[:, None] * z0 + np.sin(t * theta)[:, None] * z1) / np.sin(
        theta)[:, None]
    np.testing.assert_allclose(z[:, j], expected, rtol=1e-4, atol=1e-5)
  images = interpolation.interpolation_images(family, None, key, rows=3, cols=5)
  assert images.shape == (15, 2, 2, 1)
