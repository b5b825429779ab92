"""`Conv` and `ConvTranspose`: Flax's `nn.Conv` with a convolution whose gradients XLA:CPU runs fast.

Why: XLA:CPU emits JAX's kernel gradient (a convolution with batch and feature swapped,
dim_labels f01b_i01o->01bf) as a naive loop nest whenever layout assignment cannot rewrite it,
which is always inside a `lax.scan`/`while` (jax-ml/jax#12868). Measured on 2 CPU cores, batch
64: a DCGAN step took 4.6 s as one jitted step and 12.8 s per step inside the engine's K-step
scan; with these layers it takes 0.30 s (benchmarks/train_step.py, `dcgan` rows). Here the
same gradients are written as convolutions in the canonical NHWC/HWIO form (explicit transposes
around them), which XLA:CPU hands to its fast kernels anywhere. Forward values are
`lax.conv_general_dilated`'s, bit for bit; gradients equal JAX's to float rounding (tested),
and second derivatives (WGAN-GP's penalty) go through the same rules. Other backends see the
same math; layouts other than NHWC/HWIO 2-D fall back to `lax.conv_general_dilated`.

`ConvTranspose(features, kernel_size, strides)` is `nn.ConvTranspose(..., transpose_kernel=False)`
as the convolution it lowers to (input dilated by the strides, JAX's transpose padding): same
parameters, names, initialisation and outputs.
"""

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _conv(lhs, rhs, geometry):
  """The plain convolution; geometry = (window_strides, padding, lhs_dilation, rhs_dilation)."""
  strides, padding, lhs_dilation, rhs_dilation = geometry
  return lax.conv_general_dilated(lhs, rhs, strides, padding, lhs_dilation, rhs_dilation,
                                  dimension_numbers=_DIMENSIONS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _fast_conv(lhs, rhs, geometry):
  return _conv(lhs, rhs, geometry)


def _fast_conv_forward(lhs, rhs, geometry):
  return _conv(lhs, rhs, geometry), (lhs, rhs)


def _input_gradient(d_out, rhs, input_shape, geometry):
  """∂L/∂lhs [B, H, W, Ci]: d_out dilated by the strides, convolved with the flipped kernel
  with its in/out axes swapped (JAX's transpose rule, as a canonical convolution)."""
  strides, padding, lhs_dilation, rhs_dilation = geometry
  pads = []
  for axis in range(2):
    kernel = (rhs.shape[axis] - 1) * rhs_dilation[axis] + 1
    dilated_in = (input_shape[1 + axis] - 1) * lhs_dilation[axis] + 1
    dilated_out = (d_out.shape[1 + axis] - 1) * strides[axis] + 1
    before = kernel - padding[axis][0] - 1
    pads.append((before, dilated_in + kernel - 1 - dilated_out - before))
  flipped = jnp.swapaxes(rhs[::-1, ::-1], 2, 3)  # [kh, kw, Co, Ci]
  return _fast_conv(d_out, flipped, (lhs_dilation, tuple(pads), strides, rhs_dilation))


def _kernel_gradient(lhs, d_out, kernel_shape, geometry):
  """∂L/∂rhs [kh, kw, Ci, Co] = Σ_b,o lhs_padded[b, o·s + k·r, ci] d_out[b, o, co]: a canonical
  convolution of lhs with batch and channels swapped ([Ci, H, W, B]) by d_out as the kernel
  ([Ho, Wo, B, Co], dilated by the strides)."""
  strides, padding, lhs_dilation, rhs_dilation = geometry
  if strides == (1, 1) and rhs_dilation == (1, 1) and lhs_dilation != (1, 1):
    return _transposed_kernel_gradient(lhs, d_out, kernel_shape, geometry)
  pads = []
  for axis in range(2):
    dilated_in = (lhs.shape[1 + axis] - 1) * lhs_dilation[axis] + 1
    reach = (d_out.shape[1 + axis] - 1) * strides[axis] + 1  # Input rows one tap touches.
    span = (kernel_shape[axis] - 1) * rhs_dilation[axis] + reach  # Rows the output needs.
    pads.append((padding[axis][0], span - dilated_in - padding[axis][0]))
  gradient = _fast_conv(jnp.transpose(lhs, (3, 1, 2, 0)), jnp.transpose(d_out, (1, 2, 0, 3)),
                        (rhs_dilation, tuple(pads), lhs_dilation, strides))  # [Ci, kh, kw, Co]
  return jnp.transpose(gradient, (1, 2, 0, 3))


def _transposed_kernel_gradient(lhs, d_out, kernel_shape, geometry):
  """∂L/∂rhs of a transposed convolution (input dilated by s, stride 1), without multiplying
  the dilation's zeros: flipped, it is d_out ([Co, Ho, Wo, B]) convolved with lhs as a kernel
  dilated by s ([H, W, B, Ci]): rev_k ∂L/∂rhs[k] = Σ_b,i lhs[b, i, ci] d_out[b, i·s + k − c].
  A quarter of the multiply-adds of the generic rule at s = 2."""
  _, padding, lhs_dilation, _ = geometry
  pads = []
  for axis in range(2):
    kernel, low = kernel_shape[axis], padding[axis][0]
    reach = (lhs.shape[1 + axis] - 1) * lhs_dilation[axis] + 1
    before = kernel - 1 - low  # Output length kernel: Ho + before + after − reach + 1.
    pads.append((before, kernel - 1 + reach - d_out.shape[1 + axis] - before))
  gradient = _fast_conv(jnp.transpose(d_out, (3, 1, 2, 0)), jnp.transpose(lhs, (1, 2, 0, 3)),
                        ((1, 1), tuple(pads), (1, 1), lhs_dilation))  # [Co, kh, kw, Ci], flipped.
  return jnp.transpose(gradient[:, ::-1, ::-1], (1, 2, 3, 0))


def _fast_conv_backward(geometry, residuals, d_out):
  lhs, rhs = residuals
  return (_input_gradient(d_out, rhs, lhs.shape, geometry).astype(lhs.dtype),
          _kernel_gradient(lhs, d_out, rhs.shape, geometry).astype(rhs.dtype))


_fast_conv.defvjp(_fast_conv_forward, _fast_conv_backward)


def _pairs(values, default=1):
  return (default, default) if values is None else tuple(int(v) for v in values)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None):
  """`lax.conv_general_dilated`'s signature (what `nn.Conv` calls) with CPU-fast gradients."""
  canonical = (lhs.ndim == 4 and feature_group_count == 1 and batch_group_count == 1
               and precision is None and preferred_element_type is None
               and lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DIMENSIONS)
               == lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers))
  if not canonical:
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                    rhs_dilation, dimension_numbers, feature_group_count,
                                    batch_group_count, precision, preferred_element_type)
  strides, lhs_dilation, rhs_dilation = map(_pairs, (window_strides, lhs_dilation, rhs_dilation))
  if isinstance(padding, str):  # As lax does: undilated input, dilated kernel.
    kernel = [(k - 1) * r + 1 for k, r in zip(rhs.shape[:2], rhs_dilation)]
    padding = lax.padtype_to_pads(lhs.shape[1:3], kernel, strides, padding)
  padding = tuple((int(low), int(high)) for low, high in padding)
  return _fast_conv(lhs, rhs, (strides, padding, lhs_dilation, rhs_dilation))


class Conv(nn.Conv):
  """`nn.Conv` with CPU-fast gradients (same parameters and outputs)."""

  conv_general_dilated: object = conv_general_dilated


class ConvTranspose(Conv):
  """`nn.ConvTranspose(features, kernel_size, strides, padding)` (transpose_kernel=False) as
  the convolution JAX lowers it to. Build it with `conv_transpose(...)`."""


def _transpose_padding(kernel: int, stride: int, mode: str) -> tuple[int, int]:
  """(before, after) padding of the dilated input, as `lax.conv_transpose` computes it."""
  if mode == "SAME":
    total = kernel + stride - 2
    before = kernel - 1 if stride > kernel - 1 else -(-total // 2)
  elif mode == "VALID":
    total, before = kernel + stride - 2 + max(kernel - stride, 0), kernel - 1
  else:
    raise ValueError(f"padding must be 'SAME', 'VALID' or (low, high) pairs, not {mode!r}")
  return before, total - before


def conv_transpose(features: int, kernel_size: Sequence[int], strides: Sequence[int],
                   padding="SAME", **kwargs) -> ConvTranspose:
  """A transposed convolution: stride-1 convolution over the input dilated by `strides`, padded
  as `lax.conv_transpose` pads ("SAME": output = input · stride; "VALID"; or explicit pairs)."""
  kernel_size, strides = tuple(kernel_size), tuple(strides)
  if isinstance(padding, str):
    padding = tuple(_transpose_padding(k, s, padding.upper()) for k, s in zip(kernel_size, strides))
  return ConvTranspose(features, kernel_size, strides=1, padding=padding,
                       input_dilation=strides, **kwargs)
