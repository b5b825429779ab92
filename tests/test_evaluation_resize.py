"""The evaluation resize (clean-fid's): float images resized as Pillow's BICUBIC on mode "F"
images, and the quantisation to 8-bit values before it."""

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from genimg_jax.evaluation import resize


@pytest.mark.parametrize("shape, size", [((28, 28), (299, 299)), ((32, 40), (299, 299)),
                                         ((320, 310), (299, 299)), ((299, 299), (299, 299)),
                                         ((9, 7), (5, 13))])
def test_resize_matches_pillow_bicubic_on_float_images(shape, size):
  values = np.random.default_rng(sum(shape)).integers(0, 256, (2, *shape, 1)).astype(np.float32)
  ours = np.asarray(resize.clean_resize(jnp.asarray(values), size))
  for image, resized in zip(values, ours):
    pil = Image.fromarray(image[..., 0], mode="F").resize(size[::-1], resample=Image.BICUBIC)
    np.testing.assert_allclose(resized[..., 0], np.asarray(pil), rtol=0, atol=2e-3)


def test_quantisation_rounds_and_clips_to_8_bit_values():
  x = np.array([0.0, 0.5 / 255, 0.49 / 255, 1.0, 1.2, -0.1, 127.5 / 255], np.float32)
  np.testing.assert_array_equal(resize.to_uint8_values(jnp.asarray(x)),
                                [0, 1, 0, 255, 255, 0, 128])
