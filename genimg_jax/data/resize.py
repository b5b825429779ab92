"""`config.image_size`: center-crop each image to a square, then resize it to N×N, at load time.

Crop: the largest centred square; when H − W is odd the extra row (or column) is dropped from
the bottom (right), i.e. the square starts at ((H − s) // 2, (W − s) // 2), s = min(H, W).
Resize: Pillow BICUBIC, each channel separately as an 8-bit image (uint8 in, uint8 out, rounded
and clipped by Pillow). Pillow widens the bicubic kernel by the scale factor when it shrinks an
image, so a downscale (CelebA 178 px → 64 px) is antialiased instead of aliased, and an upscale
(MNIST 28 px → 32 px) stays sharp: the antialiased PIL-bicubic resize the clean-fid authors
(Parmar et al., 2022) recommend. Grey images keep one channel. Done once, in host memory;
nothing is cached on disk.
"""

import numpy as np
from PIL import Image

RESAMPLE = Image.Resampling.BICUBIC


def center_square(height: int, width: int) -> tuple[int, int, int]:
  """(top, left, side) of the largest centred square of an H×W image."""
  side = min(height, width)
  return (height - side) // 2, (width - side) // 2, side


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 [H, W, C] → uint8 [size, size, C]: centre square, then BICUBIC per channel."""
  top, left, side = center_square(*image.shape[:2])
  square = image[top:top + side, left:left + side]
  if side == size:
    return np.ascontiguousarray(square)
  out = np.empty((size, size, image.shape[2]), np.uint8)
  for c in range(image.shape[2]):
    channel = Image.fromarray(np.ascontiguousarray(square[:, :, c]))  # Mode "L".
    out[:, :, c] = np.asarray(channel.resize((size, size), RESAMPLE))
  return out


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
  """uint8 [N, H, W, C] → uint8 [N, size, size, C] (each image as `resize_image`)."""
  out = np.empty((len(images), size, size, images.shape[3]), np.uint8)
  for i, image in enumerate(images):
    out[i] = resize_image(image, size)
  return out
