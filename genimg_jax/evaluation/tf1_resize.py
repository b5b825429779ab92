"""TensorFlow 1's legacy bilinear resize (`tf.compat.v1.image.resize_bilinear`), in JAX.

compare_gan v1 (the code behind Lucic et al. 2018's FIDs) prepares Inception inputs with TF-GAN's
`preprocess_image`, which calls `resize_bilinear(images, [299, 299])` with TF 1's defaults:
align_corners=False and no half-pixel centres, no antialiasing. Output pixel i of an axis of
`in` inputs and `out` outputs reads source position

    s_i = float32(i) · scale,   scale = float32(in) / float32(out)   (both in float32, as TF),
    lo_i = ⌊s_i⌋,  hi_i = min(⌈s_i⌉, in − 1),  t_i = s_i − ⌊s_i⌋,

so the grid is anchored at the top-left corner (not at pixel centres) and the last rows and
columns of a magnified image repeat the last input pixel. Each output is TF's lerp, in TF's
order of float32 operations:

    top = x[lo_y, lo_x] + (x[lo_y, hi_x] − x[lo_y, lo_x]) · t_x
    bottom = x[hi_y, lo_x] + (x[hi_y, hi_x] − x[hi_y, lo_x]) · t_x
    out = top + (bottom − top) · t_y

Here the taps are computed once per size pair in NumPy float32 and the lerps are gathers and
elementwise float32 arithmetic (jit-able, batched, any device); tests/data/tf1_resize.npz holds
TensorFlow's own outputs (benchmarks/record_tf1_reference.py) that the test compares against.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=None)
def legacy_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(lo int32 [out], hi int32 [out], t float32 [out]) of one axis, as TF 1's LegacyScaler.

  s = float32(i) · (float32(in) / float32(out)); lo = max(⌊s⌋, 0); hi = min(⌈s⌉, in − 1);
  t = s − ⌊s⌋ (all float32).
  """
  scale = np.float32(in_size) / np.float32(out_size)
  source = np.arange(out_size, dtype=np.float32) * scale  # float32 × float32 → float32.
  floor = np.floor(source)
  lo = np.maximum(floor, 0).astype(np.int32)
  hi = np.minimum(np.ceil(source), in_size - 1).astype(np.int32)
  return lo, hi, (source - floor).astype(np.float32)


def legacy_bilinear_resize(images: jax.Array, size: tuple[int, int] = (299, 299)) -> jax.Array:
  """[N, H, W, C] float32 → [N, size[0], size[1], C]: `tf.compat.v1.image.resize_bilinear`
  (align_corners=False, half_pixel_centers=False), per channel; no clipping, no rounding."""
  _, h, w, _ = images.shape
  y_lo, y_hi, t_y = legacy_taps(h, size[0])
  x_lo, x_hi, t_x = legacy_taps(w, size[1])
  x = images.astype(jnp.float32)
  t_x = jnp.asarray(t_x)[None, None, :, None]
  t_y = jnp.asarray(t_y)[None, :, None, None]
  upper, lower = jnp.take(x, y_lo, axis=1), jnp.take(x, y_hi, axis=1)  # [N, H', W, C] each.
  top_left, top_right = jnp.take(upper, x_lo, axis=2), jnp.take(upper, x_hi, axis=2)
  bottom_left, bottom_right = jnp.take(lower, x_lo, axis=2), jnp.take(lower, x_hi, axis=2)
  top = top_left + (top_right - top_left) * t_x
  bottom = bottom_left + (bottom_right - bottom_left) * t_x
  return top + (bottom - top) * t_y
