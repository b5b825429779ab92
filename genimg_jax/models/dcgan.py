"""DCGAN for MNIST-sized images (docs/models.md): the TensorFlow DCGAN tutorial's layers.

G: z → Dense 7·7·256 (no bias) → BN → LeakyReLU(0.2) → reshape 7×7×256 → ConvT 128 5×5 s1 SAME
   (no bias) → BN → LeakyReLU → ConvT 64 5×5 s2 → BN → LeakyReLU → ConvT C 5×5 s2 → tanh.
D: Conv 64 5×5 s2 SAME → LeakyReLU(0.2) → Dropout 0.3 → Conv 128 5×5 s2 → LeakyReLU →
   Dropout 0.3 → flatten → Dense 1 (a logit).
For H = W = 28 the generator starts at 7×7 (= H/4). Conditional (`cgan`): G takes
[z, embed(y)]; D ends in the projection head l = ψ(φ) + ⟨embed(y), φ⟩ on the flattened features.
BatchNorm runs in float32 whatever the compute dtype; its running statistics live in
'batch_stats' (train mode: batch statistics, updated averages; eval mode: the averages).
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from genimg_jax import config_checks as checks
from genimg_jax.models import conditional, conv_layers
from genimg_jax.models import initializers as inits


def _conv_transpose(features: int, stride: int, x, dtype, init_scheme: str):
  """ConvT `features` 5×5 with `stride`, SAME, no bias, applied to x inside a compact method."""
  init = inits.conv_kwargs(init_scheme, x.shape[-1], features, (5, 5), transpose=True)
  return conv_layers.conv_transpose(features, (5, 5), (stride, stride), padding="SAME",
                                    use_bias=False, dtype=dtype, **init)(x)


class Generator(nn.Module):
  """z [B, L] (+ labels [B]) → images [B, H, W, C] in (−1, 1)."""

  image_shape: Sequence[int]  # (H, W, C), H = W divisible by 4.
  base_channels: int = 256  # Channels of the 7×7 (H/4) start; halved by each ConvT.
  num_classes: int = 0  # > 0: conditional on a label embedding.
  label_embed_dim: int = 50
  leaky_relu_slope: float = 0.2
  batch_norm_momentum: float = 0.9
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # pmap's axis: batch statistics over every device.
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    height, width, channels = self.image_shape
    start = height // 4
    bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=self.batch_norm_momentum,
                              epsilon=1e-5, dtype=jnp.float32,
                              axis_name=self.batch_norm_axis_name)
    act = lambda x: nn.leaky_relu(x, self.leaky_relu_slope)
    if self.num_classes:
      z = conditional.concat_label_embedding(z, labels, self.num_classes, self.label_embed_dim)
    x = nn.Dense(start * start * self.base_channels, use_bias=False, dtype=self.dtype,
                 **inits.dense_kwargs(self.init_scheme, z.shape[-1]))(z)
    x = act(bn()(x)).reshape((z.shape[0], start, start, self.base_channels))
    for channels_out, stride in ((self.base_channels // 2, 1), (self.base_channels // 4, 2)):
      x = _conv_transpose(channels_out, stride, x, self.dtype, self.init_scheme)
      x = act(bn()(x))
    x = _conv_transpose(channels, 2, x, self.dtype, self.init_scheme)
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """images [B, H, W, C] (+ labels [B]) → logits [B] (float32)."""

  channels: Sequence[int] = (64, 128)
  dropout_rate: float = 0.3
  num_classes: int = 0  # > 0: projection discriminator.
  leaky_relu_slope: float = 0.2
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # No BatchNorm here (the GAN network contract).
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, images, labels=None, train: bool = True):
    x = images
    for width in self.channels:
      x = conv_layers.Conv(width, (5, 5), (2, 2), padding="SAME", dtype=self.dtype,
                           **inits.conv_kwargs(self.init_scheme, x.shape[-1], width, (5, 5)))(x)
      x = nn.leaky_relu(x, self.leaky_relu_slope)
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    features = x.reshape((x.shape[0], -1))
    return conditional.ProjectionOutput(self.num_classes, dtype=self.dtype,
                                        init_scheme=self.init_scheme)(features, labels, train)


def check_config(config) -> None:
  """The keys gan_networks reads (configs/dcgan.py)."""
  checks.positive_int(config, "generator_base_channels", "label_embed_dim")
  checks.widths(config, "discriminator_channels", non_empty=True)
  checks.fraction(config, "discriminator_dropout", "batch_norm_momentum")
  checks.non_negative(config, "leaky_relu_slope")


def gan_networks(config, image_shape, num_classes: int = 0):
  """(Generator, Discriminator) for `image_shape`; ValueError for a shape G cannot produce."""
  height, width, _ = image_shape
  if height != width or height % 4:
    raise ValueError(f"the DCGAN generator makes square images with a side divisible by 4, not "
                     f"{'×'.join(map(str, image_shape))}")
  classes = num_classes if config.conditional else 0
  dtype = jnp.dtype(config.compute_dtype)
  generator = Generator(tuple(image_shape), config.generator_base_channels, classes,
                        config.label_embed_dim, config.leaky_relu_slope,
                        config.batch_norm_momentum, dtype, init_scheme=config.init)
  discriminator = Discriminator(tuple(config.discriminator_channels),
                                config.discriminator_dropout, classes, config.leaky_relu_slope,
                                dtype, init_scheme=config.init)
  return generator, discriminator


# Narrow widths for tests and smoke runs: same layers, fewer channels.
SMALL = dict(generator_base_channels=16, discriminator_channels=(8, 16), latent_dim=8,
             label_embed_dim=4)
