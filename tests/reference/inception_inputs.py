"""Deterministic test images for the Inception reference (no torch; shared by the script and test).

`network_inputs` are [4, 299, 299, 3] uint8 values built with exact integer numpy operations
(noise, blocks, ramps, a ring), so the test regenerates bit-identical float32 inputs
(v − 128)/128 without storing 4 MB. `small_images` are [2, 28, 28, 1] grey images in [0, 1]
for the whole pipeline (uint8 quantisation and clean-fid's Pillow resize included).
"""

import numpy as np

SEED = 20151205  # The graph's date, as a seed.


def network_inputs() -> np.ndarray:
  """[4, 299, 299, 3] uint8: noise, 10×10 colour blocks, colour ramps, a ring on a gradient."""
  rng = np.random.default_rng(SEED)
  noise = rng.integers(0, 256, (299, 299, 3), dtype=np.uint8)
  blocks = np.repeat(np.repeat(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8), 30, 0), 30, 1)
  i, j = np.mgrid[0:299, 0:299]
  ramps = np.stack([i * 255 // 298, j * 255 // 298, (i + j) * 255 // 596], -1).astype(np.uint8)
  radius2 = (i - 150) ** 2 + (j - 130) ** 2
  ring = ((radius2 > 60 ** 2) & (radius2 < 90 ** 2)).astype(np.int64) * 200
  scene = np.stack([ring + j * 55 // 298, ring // 2 + 30, 255 - ring - i * 55 // 298], -1)
  return np.stack([noise, blocks[:299, :299], ramps, scene.astype(np.uint8)])


def scaled(values: np.ndarray) -> np.ndarray:
  """uint8 values -> the network's float32 input (v − 128)/128 (exact in float32)."""
  return (values.astype(np.float32) - 128.0) / 128.0


def small_images() -> np.ndarray:
  """[2, 28, 28, 1] float32 in [0, 1]: a blurred stroke digit-like blob and uniform noise."""
  rng = np.random.default_rng(SEED + 1)
  i, j = np.mgrid[0:28, 0:28]
  stroke = np.exp(-((i - 14) ** 2 / 40.0 + (j - 14 - (i - 14) * 0.3) ** 2 / 4.0))
  blob = np.clip(stroke + 0.6 * np.exp(-((i - 8) ** 2 + (j - 17) ** 2) / 6.0), 0, 1)
  return np.stack([blob, rng.random((28, 28))])[..., None].astype(np.float32)
