"""Conditional and normalised discriminator parts: spectral norm against the SVD, the projection
head against its formula."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax.models import conditional


def test_spectral_norm_divides_by_the_top_singular_value():
  """After enough power iterations, flax's SpectralNorm (as the D layers use it) gives W / σ₁."""
  layer = nn.Dense(5)
  apply = conditional.maybe_spectral_norm

  class Wrapped(nn.Module):
    @nn.compact
    def __call__(self, x, train):
      return apply(layer.clone(name="dense"), True, train)(x)

  model = Wrapped()
  x = jnp.eye(7)  # Rows of the identity: the output is the normalised kernel (plus bias 0).
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  (kernel,) = [w for w in jax.tree_util.tree_leaves(variables["params"]) if w.ndim == 2]
  for _ in range(60):  # Each train-mode call runs one power iteration and keeps u.
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    variables = {**variables, **updates}
  out = model.apply(variables, x, train=False)
  sigma = np.linalg.svd(np.asarray(kernel), compute_uv=False)[0]
  np.testing.assert_allclose(out, kernel / sigma, rtol=1e-4, atol=1e-6)
  top = np.linalg.svd(np.asarray(out), compute_uv=False)[0]
  np.testing.assert_allclose(top, 1.0, rtol=1e-4)


def test_projection_head_equals_its_formula_and_depends_on_the_label():
  head = conditional.ProjectionOutput(num_classes=4)
  features = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
  labels = jnp.array([0, 1, 2, 3, 1])
  variables = head.init(jax.random.PRNGKey(1), features, labels, train=False)
  logits = head.apply(variables, features, labels, train=False)
  p = variables["params"]
  psi = features @ p["psi"]["kernel"][:, 0] + p["psi"]["bias"][0]
  projection = jnp.sum(p["class_embedding"]["embedding"][labels] * features, axis=-1)
  np.testing.assert_allclose(logits, psi + projection, rtol=1e-5, atol=1e-6)
  other = head.apply(variables, features, (labels + 1) % 4, train=False)
  assert np.all(np.abs(np.asarray(other) - np.asarray(logits)) > 1e-6)
  unconditional = conditional.ProjectionOutput(num_classes=0)
  v0 = unconditional.init(jax.random.PRNGKey(1), features, None, train=False)
  np.testing.assert_allclose(unconditional.apply(v0, features, None, train=False),
                             features @ v0["params"]["psi"]["kernel"][:, 0]
                             + v0["params"]["psi"]["bias"][0], rtol=1e-5, atol=1e-6)
