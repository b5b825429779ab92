"""The sanity sets of the real-MNIST evaluation tests and their FIDs against the test split.

Apart from tests/conftest.py (which sets the suite's compiler flags when imported), so that a
child process can use them with XLA's default settings."""

import numpy as np


def _blur(images):
  """3×3 box blur (edge-padded), float [N, H, W, C]."""
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  h, w = images.shape[1:3]
  return sum(padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0


def sanity_sets(train_images):
  rng = np.random.default_rng(0)
  real = train_images[:10_000].astype(np.float32) / 255.0
  flat = real.reshape(len(real), -1)
  shuffled = np.take_along_axis(flat, rng.permuted(np.tile(np.arange(flat.shape[1]),
                                                           (len(flat), 1)), axis=1), axis=1)
  return {"train[:10k]": real, "blurred": _blur(real),
          "shuffled pixels": shuffled.reshape(real.shape),
          "uniform noise": rng.uniform(size=real.shape).astype(np.float32)}


def ranked_fids(space, sets, test_images):
  from genimg_jax.evaluation import fid as fid_lib

  reference = fid_lib.gaussian_stats(space(test_images.astype(np.float32) / 255.0))
  return {name: fid_lib.frechet_distance(reference, fid_lib.gaussian_stats(space(images)))
          for name, images in sets.items()}
