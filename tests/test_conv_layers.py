"""conv_layers.Conv / conv_transpose equal Flax's nn.Conv / nn.ConvTranspose (parameters, outputs,
first and second derivatives) and compile their gradients to canonical convolutions only."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from genimg_jax.models import conv_layers

CONV_CASES = [((5, 5), (2, 2), "SAME"), ((4, 4), (2, 2), 1), ((3, 3), (1, 1), 1),
              ((3, 3), (2, 2), "VALID"), ((3, 2), (1, 2), ((2, 0), (1, 1)))]
TRANSPOSE_CASES = [((5, 5), (2, 2), "SAME"), ((5, 5), (1, 1), "SAME"), ((4, 4), (2, 2), "SAME"),
                   ((3, 3), (2, 2), "VALID"), ((3, 3), (3, 2), "SAME")]


def _pairs(kind):
  if kind == "conv":
    return [(nn.Conv(6, k, s, padding=p), conv_layers.Conv(6, k, s, padding=p), (2, 11, 9, 3))
            for k, s, p in CONV_CASES]
  return [(nn.ConvTranspose(6, k, s, padding=p), conv_layers.conv_transpose(6, k, s, padding=p),
           (2, 7, 6, 3)) for k, s, p in TRANSPOSE_CASES]


def _loss(module):
  return lambda params, x: jnp.sum(jnp.sin(module.apply(params, x)))


def _penalty(module):
  """WGAN-GP-like second order: ‖∂loss/∂x‖² as a function of the parameters."""
  return lambda params, x: jnp.sum(jax.grad(_loss(module), argnums=1)(params, x) ** 2)


def _assert_trees_close(actual, expected, rtol):
  for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected)):
    np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * float(jnp.max(jnp.abs(e))))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["conv", "transpose"])
def test_same_parameters_outputs_and_derivatives_as_flax(kind):
  key = jax.random.PRNGKey(0)
  for reference, fast, shape in _pairs(kind):
    x = jax.random.normal(key, shape)
    params = reference.init(key, x)
    assert jax.tree_util.tree_structure(fast.init(key, x)) == jax.tree_util.tree_structure(params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, fast.init(key, x), params)  # Same init.
    np.testing.assert_array_equal(fast.apply(params, x), reference.apply(params, x))
    expected = jax.grad(_loss(reference), argnums=(0, 1))(params, x)
    _assert_trees_close(jax.grad(_loss(fast), argnums=(0, 1))(params, x), expected, 1e-5)
    expected = jax.grad(_penalty(reference))(params, x)
    _assert_trees_close(jax.grad(_penalty(fast))(params, x), expected, 1e-5)


def test_gradients_pass_numerical_check():
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 6, 6, 2))
  w = jax.random.normal(jax.random.PRNGKey(2), (3, 3, 2, 3))
  for strides, lhs_dilation in (((2, 2), (1, 1)), ((1, 1), (2, 2))):
    f = lambda x, w, s=strides, d=lhs_dilation: conv_layers.conv_general_dilated(
        x, w, s, "SAME", d, None, ("NHWC", "HWIO", "NHWC"))
    check_grads(f, (x, w), order=2, modes=("rev",), atol=1e-2, rtol=1e-2)


def _convolution_labels(hlo: str) -> set:
  return set(re.findall(r"convolution\(.*?dim_labels=([\w>-]+)", hlo))


def test_gradients_inside_a_scan_compile_to_canonical_convolutions():
  """XLA:CPU runs only canonical convolutions (b01f_01io->b01f) with its fast kernels; JAX's own
  kernel gradient inside a loop is not rewritten (jax-ml/jax#12868) and runs 20–60× slower."""
  modules = [conv_layers.Conv(8, (5, 5), (2, 2)), conv_layers.conv_transpose(8, (5, 5), (2, 2))]
  x = jnp.ones((4, 7, 7, 3))

  def labels_in_scan(module):
    params = module.init(jax.random.PRNGKey(0), x)
    grad = jax.grad(_loss(module))

    def scan(params):
      step = lambda p, _: (jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, grad(p, x)), None)
      return jax.lax.scan(step, params, None, length=3)[0]

    return _convolution_labels(jax.jit(scan).lower(params).compile().as_text())

  for module in modules:
    assert labels_in_scan(module) == {"b01f_01io->b01f"}
  if jax.default_backend() == "cpu":  # The check can fail: Flax's own layer does not pass it.
    assert labels_in_scan(nn.Conv(8, (5, 5), (2, 2))) != {"b01f_01io->b01f"}


def test_other_layouts_fall_back_to_lax():
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 3, 8, 8))  # NCHW.
  w = jax.random.normal(jax.random.PRNGKey(4), (4, 3, 3, 3))  # OIHW.
  numbers = ("NCHW", "OIHW", "NCHW")
  np.testing.assert_array_equal(
      conv_layers.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=numbers),
      jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=numbers))
