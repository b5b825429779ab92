"""clean-fid's "clean" resize, as matrices: Pillow's bicubic filter on float32 ('F') images.

clean-fid (Parmar et al. 2022) resizes each uint8 channel as a float32 PIL image with
`Image.resize(size, Image.BICUBIC)` and does not quantise or clip the result; Pillow's
resampling is separable, horizontal pass first (stored as float32), then vertical, each output
pixel a normalised sum of Keys' cubic kernel (a = -0.5) over inputs, widened by the scale
factor when shrinking (antialiasing). Both passes are linear maps, so here they are two
matrices built with Pillow's coefficient rule in float64 and applied with einsum (jit-able,
batched, on any device) instead of a Python loop over images and channels.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

_BICUBIC_A = -0.5  # Pillow's bicubic_filter constant (Keys' kernel).
_BICUBIC_SUPPORT = 2.0


def _bicubic(x: np.ndarray) -> np.ndarray:
  """Keys' cubic kernel with a = -0.5, as Pillow's bicubic_filter."""
  x = np.abs(x)
  a = _BICUBIC_A
  near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
  far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
  return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


@functools.lru_cache(maxsize=None)
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out_size, in_size] float64 weights of Pillow's precompute_coeffs for one axis (box = all).

  center = (i + ½)·scale, support = 2·max(scale, 1), taps x ∈ [int(center − support + ½),
  int(center + support + ½)) clipped to the image, w = k((x − center + ½)/max(scale, 1)),
  normalised to sum 1.
  """
  scale = in_size / out_size
  filterscale = max(scale, 1.0)
  support = _BICUBIC_SUPPORT * filterscale
  matrix = np.zeros((out_size, in_size), np.float64)
  for i in range(out_size):
    center = (i + 0.5) * scale
    lo = max(int(center - support + 0.5), 0)  # C truncation; clipped at 0 either way.
    hi = min(int(center + support + 0.5), in_size)
    taps = np.arange(lo, hi)
    weights = _bicubic((taps - center + 0.5) / filterscale)
    total = weights.sum()
    matrix[i, lo:hi] = weights / total if total != 0.0 else weights
  return matrix


def to_uint8_values(images: jax.Array) -> jax.Array:
  """[0, 1] floats -> the uint8 values a PNG of them holds, as float32: clip(⌊255x + ½⌋)."""
  return jnp.clip(jnp.floor(images.astype(jnp.float32) * 255.0 + 0.5), 0.0, 255.0)


def clean_resize(values: jax.Array, size: tuple[int, int] = (299, 299)) -> jax.Array:
  """[N, H, W, C] float32 values -> [N, size[0], size[1], C], as clean-fid's PIL float resize.

  Horizontal pass then vertical (Pillow's order), float32 in between; no clipping.
  """
  _, h, w, _ = values.shape
  horizontal = jnp.asarray(bicubic_matrix(w, size[1]), jnp.float32)  # [W', W]
  vertical = jnp.asarray(bicubic_matrix(h, size[0]), jnp.float32)  # [H', H]
  hp = jax.lax.Precision.HIGHEST
  x = jnp.einsum("ow,nhwc->nhoc", horizontal, values.astype(jnp.float32), precision=hp)
  return jnp.einsum("ph,nhoc->npoc", vertical, x, precision=hp)
