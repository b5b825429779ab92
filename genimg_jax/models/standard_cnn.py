"""The standard CNN of the SNGAN paper (Miyato et al. 2018, Table 3) for 32×32 and 64×64 images
(docs/models.md); one file serves dcgan32, sngan, wgan_gp and lsgan.

G: z ∈ R^128 → Dense 4·4·512 → BN → ReLU → reshape 4×4×512 → [ConvT 4×4 s2 → BN → ReLU] with
   256, 128, 64 channels (and 32 more for 64×64) → Conv 3×3 s1 → C channels → tanh.
D: Conv 3×3 s1 64, Conv 4×4 s2 64, Conv 3×3 s1 128, Conv 4×4 s2 128, Conv 3×3 s1 256,
   Conv 4×4 s2 256, Conv 3×3 s1 512 (and Conv 4×4 s2 512 for 64×64), each → LeakyReLU(0.1)
   → flatten → Dense 1. Paddings 1 (as the paper's Chainer code): 4×4 s2 halves the size.
The widths above are for `width` 64 (StudioGAN's g_conv_dim / d_conv_dim): every channel count
is a fixed multiple of it (G 8w → 4w, 2w, w, w/2; D w, w, 2w, 2w, 4w, 4w, 8w, 8w), so tests can
run the same network narrow.
With `spectral_norm`, every D layer (convs, the Dense and the projection embedding) is wrapped in
flax's SpectralNorm: W / σ(W), σ from one power iteration per training forward pass, the vector
u kept in 'batch_stats'. Conditional: G takes [z, embed(y)], D ends in the projection head.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from genimg_jax import config_checks as checks
from genimg_jax.models import conditional, conv_layers
from genimg_jax.models import initializers as inits

SIZES = {32: ((4, 2, 1), 0), 64: ((4, 2, 1, 0.5), 1)}  # side → (G ConvT widths / w, extra D).


class Generator(nn.Module):
  """z [B, 128] (+ labels [B]) → images [B, H, W, C] in (−1, 1)."""

  image_shape: Sequence[int]
  width: int = 64  # w: the last 32×32 block's channels; the start has 8w.
  num_classes: int = 0
  label_embed_dim: int = 128
  batch_norm_momentum: float = 0.9
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # pmap's axis: batch statistics over every device.
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    side, _, channels = self.image_shape
    bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=self.batch_norm_momentum,
                              epsilon=1e-5, dtype=jnp.float32,
                              axis_name=self.batch_norm_axis_name)
    if self.num_classes:
      z = conditional.concat_label_embedding(z, labels, self.num_classes, self.label_embed_dim)
    start = 8 * self.width
    x = nn.Dense(4 * 4 * start, dtype=self.dtype,
                 **inits.dense_kwargs(self.init_scheme, z.shape[-1]))(z)
    x = nn.relu(bn()(x)).reshape((z.shape[0], 4, 4, start))
    for multiple in SIZES[side][0]:
      features = max(1, int(multiple * self.width))
      init = inits.conv_kwargs(self.init_scheme, x.shape[-1], features, (4, 4), transpose=True)
      x = conv_layers.conv_transpose(features, (4, 4), (2, 2), padding="SAME", dtype=self.dtype,
                                     **init)(x)
      x = nn.relu(bn()(x))
    x = conv_layers.Conv(channels, (3, 3), padding=1, dtype=self.dtype,
                         **inits.conv_kwargs(self.init_scheme, x.shape[-1], channels, (3, 3)))(x)
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """images [B, H, W, C] (+ labels [B]) → logits [B] (float32)."""

  image_side: int = 32
  width: int = 64  # w: the first conv's channels; the last has 8w.
  spectral_norm: bool = False
  num_classes: int = 0
  leaky_relu_slope: float = 0.1
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # No BatchNorm here (the GAN network contract).
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, images, labels=None, train: bool = True):
    layers = [(1, 3, 1), (1, 4, 2), (2, 3, 1), (2, 4, 2), (4, 3, 1), (4, 4, 2),
              (8, 3, 1)] + [(8, 4, 2)] * SIZES[self.image_side][1]  # (channels / w, k, stride)
    x = images
    for multiple, kernel, stride in layers:
      features = multiple * self.width
      conv = conv_layers.Conv(features, (kernel, kernel), (stride, stride), padding=1,
                              dtype=self.dtype, **inits.conv_kwargs(
                                  self.init_scheme, x.shape[-1], features, (kernel, kernel)))
      x = nn.leaky_relu(conditional.maybe_spectral_norm(conv, self.spectral_norm, train)(x),
                        self.leaky_relu_slope)
    features = x.reshape((x.shape[0], -1))
    return conditional.ProjectionOutput(self.num_classes, self.spectral_norm, self.dtype,
                                        self.init_scheme)(features, labels, train)


def check_config(config) -> None:
  """The keys gan_networks reads (configs/dcgan32.py and the configs built on it)."""
  checks.positive_int(config, "generator_width", "discriminator_width", "label_embed_dim")
  checks.boolean(config, "spectral_norm")
  checks.fraction(config, "batch_norm_momentum")
  checks.non_negative(config, "leaky_relu_slope")


def gan_networks(config, image_shape, num_classes: int = 0):
  """(Generator, Discriminator) for 32×32×C or 64×64×C; ValueError for any other shape."""
  height, width, _ = image_shape
  if height != width or height not in SIZES:
    raise ValueError(f"the standard CNN takes 32×32 or 64×64 images, not "
                     f"{'×'.join(map(str, image_shape))}: set --config.image_size=32 (or 64) "
                     f"to resize the data")
  classes = num_classes if config.conditional else 0
  dtype = jnp.dtype(config.compute_dtype)
  generator = Generator(tuple(image_shape), config.generator_width, classes,
                        config.label_embed_dim, config.batch_norm_momentum, dtype,
                        init_scheme=config.init)
  discriminator = Discriminator(height, config.discriminator_width, config.spectral_norm,
                                classes, config.leaky_relu_slope, dtype, init_scheme=config.init)
  return generator, discriminator


# Narrow widths for tests and smoke runs: same layers, fewer channels.
SMALL = dict(generator_width=4, discriminator_width=4, latent_dim=8, label_embed_dim=4)
