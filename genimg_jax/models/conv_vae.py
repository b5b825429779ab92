"""Convolutional VAE: strided-conv encoder, mirrored conv-transpose decoder (`--model conv_vae`).

Layers for the default `conv_channels = (32, 64)`, `encoder_hidden = decoder_hidden = (256,)`,
on H × W × C images (H, W divisible by 4; all convs 4×4, stride 2, SAME padding, ReLU):

  encoder: x [B, H, W, C] → Conv 32 → ReLU → Conv 64 → ReLU → [B, H/4, W/4, 64] → flatten
           → Dense 256 → ReLU → Dense L (μ) and Dense L (log σ²)
  decoder: z [B, L] → Dense 256 → ReLU → Dense (H/4·W/4·64) → ReLU → reshape [B, H/4, W/4, 64]
           → ConvTranspose 32 → ReLU → ConvTranspose C → pixel logits [B, H, W, C]

In general each entry of `conv_channels` is one stride-2 conv (so H and W must be divisible by
2^len(conv_channels)); the decoder runs them backwards, its last conv-transpose giving C logits.
Conditional (num_classes > 0): the one-hot label is broadcast over H × W as extra input
channels of the encoder and concatenated to z in the decoder.
`dtype` is the compute dtype; parameters and outputs are float32.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genimg_jax import config_checks as checks
from genimg_jax.models import conv_layers, mlp
from genimg_jax.models import initializers as inits

KERNEL = (4, 4)
STRIDES = (2, 2)


class ConvEncoder(nn.Module):
  """images [B, H, W, C] (+ labels [B]) → (μ [B, latent], log σ² [B, latent])."""

  channels: Sequence[int]
  hidden: Sequence[int]
  latent_dim: int
  activation: mlp.Activation = nn.relu
  dtype: jnp.dtype = jnp.float32
  num_classes: int = 0
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, images, labels=None):
    x = images.astype(self.dtype)
    if self.num_classes > 0:
      if labels is None:
        raise ValueError("this network is class-conditional: pass labels")
      one_hot = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)  # [B, classes]
      planes = jnp.broadcast_to(one_hot[:, None, None, :], (*x.shape[:3], self.num_classes))
      x = jnp.concatenate([x, planes], axis=-1)  # [B, H, W, C + classes]
    for width in self.channels:
      init = inits.conv_kwargs(self.init_scheme, x.shape[-1], width, KERNEL)
      x = self.activation(conv_layers.Conv(width, KERNEL, STRIDES, padding="SAME",
                                           dtype=self.dtype, **init)(x))
    x = mlp.hidden_layers(x.reshape((x.shape[0], -1)), self.hidden, self.activation, self.dtype,
                          init=self.init_scheme)
    mean = mlp.dense(self.latent_dim, x, self.dtype, self.init_scheme, name="mean")
    logvar = mlp.dense(self.latent_dim, x, self.dtype, self.init_scheme, name="logvar")
    return mean.astype(jnp.float32), logvar.astype(jnp.float32)


class ConvDecoder(nn.Module):
  """z [B, latent] (‖ one-hot labels) → pixel logits [B, H, W, C] (σ(logits) is the mean)."""

  channels: Sequence[int]  # The encoder's conv widths, in encoder order.
  hidden: Sequence[int]
  image_shape: Sequence[int]  # (H, W, C)
  activation: mlp.Activation = nn.relu
  dtype: jnp.dtype = jnp.float32
  num_classes: int = 0
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, z, labels=None):
    height, width, out_channels = self.image_shape
    scale = 2 ** len(self.channels)
    x = mlp.with_one_hot(z.astype(self.dtype), labels, self.num_classes)
    x = mlp.hidden_layers(x, self.hidden, self.activation, self.dtype, init=self.init_scheme)
    start = (height // scale, width // scale, self.channels[-1])
    x = self.activation(mlp.dense(start[0] * start[1] * start[2], x, self.dtype,
                                  self.init_scheme))
    x = x.reshape((z.shape[0], *start))
    widths = (*reversed(self.channels[:-1]), out_channels)  # e.g. (32, C): each doubles H, W.
    for i, width_out in enumerate(widths):
      init = inits.conv_kwargs(self.init_scheme, x.shape[-1], width_out, KERNEL, transpose=True)
      x = conv_layers.conv_transpose(width_out, KERNEL, STRIDES, padding="SAME",
                                     dtype=self.dtype, **init)(x)
      if i < len(widths) - 1:  # No activation on the logits.
        x = self.activation(x)
    return x.astype(jnp.float32)


def check_config(config) -> None:
  """The keys vae_network reads: the MLP VAE's (widths, activation) and conv_channels."""
  mlp.check_config(config)
  checks.widths(config, "conv_channels", non_empty=True)


def check_image_shape(image_shape, channels) -> None:
  """ValueError unless H and W are divisible by 2^len(channels) (one halving per conv)."""
  height, width, _ = image_shape
  scale = 2 ** len(channels)
  if height % scale or width % scale or height < scale or width < scale:
    raise ValueError(f"the conv VAE halves the image {len(channels)} times, so height and "
                     f"width must be multiples of {scale}; got {height}x{width}")


def vae_network(config, image_shape, num_classes: int = 0) -> mlp.VAE:
  """The conv VAE from a config: `conv_channels`, `encoder_hidden`, `decoder_hidden`,
  `latent_dim`, `activation`; ValueError for an image shape it cannot take."""
  channels = tuple(int(c) for c in config.conv_channels)
  if not channels:
    raise ValueError("conv_channels is empty: give at least one conv width")
  check_image_shape(image_shape, channels)
  act = mlp.get_activation(config.activation, config.leaky_relu_slope)
  dtype = jnp.dtype(config.compute_dtype)
  return mlp.VAE(
      encoder=ConvEncoder(channels, tuple(config.encoder_hidden), config.latent_dim, act, dtype,
                          num_classes, config.init),
      decoder=ConvDecoder(channels, tuple(config.decoder_hidden), tuple(image_shape), act, dtype,
                          num_classes, config.init))


# Narrow widths for tests and smoke runs: same layers, fewer channels.
SMALL = dict(conv_channels=(4, 8), encoder_hidden=(16,), decoder_hidden=(16,), latent_dim=4)
