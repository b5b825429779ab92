"""Shared by the step and dispatch tests: tree comparisons, a fixed MNIST subset, and a family
with its state, placed data and compiled K-step function set up the way the loop sets them up."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax import sharding
from genimg_jax.data import embedded, placement
from genimg_jax.train import compiled
from genimg_jax.train.families import build_family


def leaves(tree):
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def host_copy(tree):
  """A host copy that survives the donation of `tree`'s device buffers."""
  return jax.tree_util.tree_map(lambda x: np.array(x, copy=True), tree)


def assert_trees_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(leaves(a), leaves(b)):
    np.testing.assert_array_equal(x, y)


def assert_trees_differ(a, b):
  assert any(not np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


def assert_trees_close(a, b, atol):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(leaves(a), leaves(b)):
    np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def max_abs_diff(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(leaves(a), leaves(b)))


@pytest.fixture(scope="module")
def mnist_subset():
  """The first 64 embedded MNIST training digits: uint8 [64, 28, 28, 1], int32 [64]."""
  images, labels = embedded.load("train")
  return {"image": np.asarray(images[:64]), "label": np.asarray(labels[:64])}


def setup(config, data, seed=0):
  """(family, fresh state placed like the loop places it, device data, K-step function)."""
  image_shape = data["image"].shape[1:]
  family = build_family(config, image_shape, 10)
  mesh = sharding.make_mesh()
  replicated = sharding.replicated(mesh)
  init = jax.jit(lambda key: family.init_state(key, len(data["image"]), image_shape),
                 out_shardings=replicated)
  state = init(jax.random.PRNGKey(seed))
  device_data = placement.place_resident(data["image"], data["label"], mesh)
  multi_step = compiled.build(family, config, mesh,
                              compiled.layout_for(family, config, mesh, len(data["image"])))
  return family, state, device_data, multi_step



def run(multi_step, state, data, sizes):
  """Dispatches of `sizes` steps each; returns (final state on the host, metrics list)."""
  metrics = []
  for k in sizes:
    state, m = multi_step(state, data, k)
    metrics.append(jax.device_get(m))
  return host_copy(state), metrics


def softplus(x):
  return jnp.logaddexp(0.0, x)  # −log σ(−x) = softplus(x).
