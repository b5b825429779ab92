"""Binarised MNIST: each pixel drawn as 0 or 255 with probability p = x / 255 (`config.binarize`).

- "none":    images as stored (grey levels).
- "static":  one seeded Bernoulli draw of every pixel, fixed for the run: the split is
             binarised once, where it is loaded (`static`), from `config.seed` and the split's
             name, so the same seed gives the same binary images on every machine (numpy's
             PCG64 stream, not the device's).
- "dynamic": a fresh draw for every batch (`dynamic`, called inside the compiled step with the
             step's key); the test split a model is scored on is binarised once, statically, so
             its bounds are on fixed binary images.

p = x / 255 makes E[binary / 255] = x / 255: binarisation keeps every pixel's mean.
"""

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("none", "static", "dynamic")  # config.binarize values.
_SPLIT_STREAMS = {"train": 1, "test": 2, "validation": 3}  # Each split its own stream of one seed.


def static(images_u8: np.ndarray, seed: int, split: str) -> np.ndarray:
  """uint8 {0, 255} images, pixel i on with probability images_u8[i] / 255: one draw from
  numpy's PCG64 seeded by (seed, split). Deterministic: same arguments, same images."""
  if images_u8.dtype != np.uint8:
    raise ValueError(f"static binarisation takes uint8 images, got {images_u8.dtype}")
  rng = np.random.default_rng([int(seed), _SPLIT_STREAMS.get(split, 0)])
  # u ~ U[0, 1) and on ⇔ 255·u < x: P(on) = x / 255 exactly (0 never on, 255 always on).
  u = rng.random(images_u8.shape, dtype=np.float64)
  return np.where(255.0 * u < images_u8, np.uint8(255), np.uint8(0))


def dynamic(images_u8: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
  """A fresh binarisation of a batch (uint8 [..] → uint8 {0, 255}), pixel on with probability
  x / 255, drawn from `key` (jax.random.bernoulli): one call per batch, a new key each time."""
  p = jnp.asarray(images_u8, jnp.float32) / 255.0
  return jnp.where(jax.random.bernoulli(key, p), jnp.uint8(255), jnp.uint8(0))


def for_split(images_u8: np.ndarray, mode: str, seed: int, split: str) -> np.ndarray:
  """The split as a run with `config.binarize = mode` loads it: grey for "none" (and for the
  training split under "dynamic", which is drawn per batch), else one static draw."""
  if mode not in MODES:
    raise ValueError(f"unknown binarisation {mode!r}: use one of {', '.join(MODES)}")
  if mode == "none" or (mode == "dynamic" and split == "train"):
    return images_u8
  return static(images_u8, seed, split)
