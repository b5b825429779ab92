"""Parameter initialisations by name (`config.init`), for Dense and convolution layers.

- "flax":        Flax's defaults: LeCun-normal kernels N(0, 1/fan_in) (truncated), zero biases.
- "torch":       PyTorch's `nn.Linear` / `nn.Conv2d` / `nn.ConvTranspose2d` default:
                 `kaiming_uniform_(a=√5)` kernels, which is U(±1/√fan_in), biases U(±1/√fan_in).
- "he_normal":   kernels N(0, 2/fan_in), biases as PyTorch's default U(±1/√fan_in) (pythae's
                 VampPrior script: `he_init` redraws the weights only).
- "glorot_zero": kernels Glorot-uniform U(±√(6/(fan_in + fan_out))), zero biases (pythae's IWAE
                 script, `unif_init`).

fan_in is PyTorch's: a Dense layer's input width; a convolution's in_channels × kernel area; a
transposed convolution's out_channels × kernel area (`conv_fan_in`). Flax's `bias_init` sees
only the bias's shape, so `dense_kwargs` and `conv_kwargs` take the fan-in from the caller.
Embedding tables, BatchNorm scales/offsets and spectral-norm vectors are not covered: they keep
Flax's defaults under every scheme.
"""

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

SCHEMES = ("flax", "torch", "he_normal", "glorot_zero")  # config.init values.


def uniform(bound: float):
  """U(−bound, bound) initialiser of any shape."""

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def kernel_init(scheme: str, fan_in: int):
  """The kernel initialiser of `scheme` for a layer with `fan_in` inputs."""
  if scheme == "torch":
    return uniform(1.0 / math.sqrt(fan_in))
  if scheme == "he_normal":
    return nn.initializers.normal(stddev=math.sqrt(2.0 / fan_in))
  if scheme == "glorot_zero":
    # Flax reads fan_in and fan_out from the kernel ([in, out], or HWIO: × kernel area); their
    # sum is PyTorch's for every layer, transposed convolutions included.
    return nn.initializers.xavier_uniform()
  return nn.initializers.lecun_normal()  # Flax's own default, read from the kernel's shape.


def bias_init(scheme: str, fan_in: int):
  """The bias initialiser of `scheme` for a layer with `fan_in` inputs."""
  if scheme in ("torch", "he_normal"):
    return uniform(1.0 / math.sqrt(fan_in))
  return nn.initializers.zeros_init()


def check(scheme: str) -> None:
  """ValueError for a name that is not one of SCHEMES."""
  if scheme not in SCHEMES:
    raise ValueError(f"unknown initialisation {scheme!r}: use one of {', '.join(SCHEMES)}")


def dense_kwargs(scheme: str, fan_in: int) -> dict:
  """kernel_init and bias_init for `nn.Dense` with `fan_in` inputs under `scheme`."""
  check(scheme)
  return {"kernel_init": kernel_init(scheme, fan_in), "bias_init": bias_init(scheme, fan_in)}


def conv_fan_in(in_channels: int, features: int, kernel_size: Sequence[int],
                transpose: bool = False) -> int:
  """PyTorch's fan-in of a convolution's weight: in_channels × kernel area; for a transposed
  convolution, whose torch weight is [in, out, kh, kw] and fan-in read from dim 1,
  features (out_channels) × kernel area. One group (our layers use no feature groups)."""
  return (features if transpose else in_channels) * math.prod(kernel_size)


def conv_kwargs(scheme: str, in_channels: int, features: int, kernel_size: Sequence[int],
                transpose: bool = False) -> dict:
  """kernel_init and bias_init for a (transposed, when `transpose`) convolution from
  `in_channels` to `features` channels under `scheme`, with PyTorch's fan-in."""
  return dense_kwargs(scheme, conv_fan_in(in_channels, features, kernel_size, transpose))
