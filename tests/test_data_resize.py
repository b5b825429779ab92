"""`image_size`: center crop to a square, then Pillow BICUBIC per channel (genimg_jax.data.resize)."""

import time

import numpy as np
import pytest
from PIL import Image

from genimg_jax.data import embedded, load_dataset, resize
from genimg_jax.errors import UserError


def checkerboard(height: int, width: int) -> np.ndarray:
  """uint8 [H, W]: 0/255 alternating per pixel."""
  return (np.indices((height, width)).sum(0) % 2 * 255).astype(np.uint8)


@pytest.mark.parametrize("shape, size", [((28, 28, 1), 32), ((40, 30, 3), 16), ((7, 9, 4), 21)])
def test_constant_image_stays_constant(shape, size):
  image = np.full(shape, 173, np.uint8)
  out = resize.resize_image(image, size)
  assert out.shape == (size, size, shape[2]) and out.dtype == np.uint8
  assert (out == 173).all()


@pytest.mark.parametrize("height, width, top, left", [(6, 10, 0, 2), (5, 8, 0, 1), (9, 4, 2, 0),
                                                      (7, 7, 0, 0)])
def test_center_crop_picks_the_middle(height, width, top, left):
  """At image_size = min(H, W) no resampling happens: the output is exactly the centre square
  (an odd excess drops its extra row/column at the bottom/right)."""
  image = np.arange(height * width * 2, dtype=np.uint8).reshape(height, width, 2)
  side = min(height, width)
  assert resize.center_square(height, width) == (top, left, side)
  np.testing.assert_array_equal(resize.resize_image(image, side),
                                image[top:top + side, left:left + side])


def test_upscale_of_a_checkerboard_matches_pillow_rgb_directly():
  """Per-channel 8-bit resizing equals Pillow's own RGB resize of the centre square."""
  rgb = np.stack([checkerboard(10, 14), 255 - checkerboard(10, 14),
                  np.arange(140, dtype=np.uint8).reshape(10, 14)], axis=-1)
  expected = Image.fromarray(rgb[:, 2:12]).resize((20, 20), Image.Resampling.BICUBIC)
  np.testing.assert_array_equal(resize.resize_image(rgb, 20), np.asarray(expected))


def test_downscale_is_antialiased():
  """A one-pixel checkerboard shrunk 4× averages to mid-grey; point sampling would give 0/255."""
  out = resize.resize_image(checkerboard(64, 64)[..., None], 16)
  assert out.shape == (16, 16, 1)
  assert out.min() >= 120 and out.max() <= 135, (out.min(), out.max())


def test_resize_images_is_resize_image_per_image():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (5, 12, 9, 3), dtype=np.uint8)
  out = resize.resize_images(images, 6)
  assert out.shape == (5, 6, 6, 3) and out.dtype == np.uint8
  for got, image in zip(out, images):
    np.testing.assert_array_equal(got, resize.resize_image(image, 6))


def test_embedded_set_resizes_and_keeps_labels():
  """mnist_embedded at 32 px: grey stays one channel, labels and classes untouched, a few
  digits equal Pillow's BICUBIC directly, and 24k digits take seconds (generous bound: the
  test machine is shared)."""
  plain = load_dataset(embedded.NAME, "train")
  start = time.perf_counter()
  big = load_dataset(embedded.NAME, "train", image_size=32)
  seconds = time.perf_counter() - start
  assert big.images.shape == (len(plain.images), 32, 32, 1) and big.images.dtype == np.uint8
  np.testing.assert_array_equal(big.labels, plain.labels)
  assert big.num_classes == plain.num_classes == 10
  for i in (0, 1, 12345):
    expected = Image.fromarray(plain.images[i, :, :, 0]).resize((32, 32), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(big.images[i, :, :, 0], np.asarray(expected))
  assert seconds < 20, f"resizing {len(big.images)} digits took {seconds:.1f} s"
  same = load_dataset(embedded.NAME, "test", image_size=28)  # Already 28x28: unchanged.
  np.testing.assert_array_equal(same.images, load_dataset(embedded.NAME, "test").images)


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_bad_image_size_is_a_user_error(bad):
  with pytest.raises(UserError, match="image_size must be a non-negative integer"):
    load_dataset(embedded.NAME, "test", image_size=bad)
