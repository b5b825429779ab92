"""inception_net.conv: its matmul and pad-and-crop rewrites of a convolution change speed, never
values or shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax.evaluation import inception_net


@pytest.mark.parametrize("side, kernel, stride, padding", [
    (9, (1, 1), 1, (0, 0)), (9, (3, 3), 1, (0, 0)), (8, (3, 3), 1, (0, 0)),
    (9, (3, 3), 2, (0, 0)), (10, (3, 3), 2, (0, 0)), (11, (3, 3), 3, (0, 0)),
    (9, (3, 3), 1, (1, 1)), (9, (1, 7), 1, (0, 3)), (9, (7, 1), 1, (3, 0)),
    (9, (5, 5), 1, (2, 2))])
def test_fast_conv_forms_equal_the_plain_convolution(side, kernel, stride, padding):
  """inception_net.conv's matmul / pad-and-crop rewrites change speed, never values or shapes."""
  rng = np.random.default_rng(side + stride)
  x = jnp.asarray(rng.normal(size=(2, side, side + 1, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(*kernel, 5, 4)), jnp.float32)
  plain = jax.lax.conv_general_dilated(x, w, (stride, stride), [(p, p) for p in padding],
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       precision=jax.lax.Precision.HIGHEST)
  fast = inception_net.conv(x, w, stride, padding)
  assert fast.shape == plain.shape
  np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)
