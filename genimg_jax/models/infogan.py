"""The InfoGAN-style networks of Lucic et al. 2018 ("Are GANs Created Equal?") for MNIST-sized
images, as google/compare_gan builds them (its first release, `src/gans/abstract_gan.py` and
`ops.py`; later `architectures/infogan.py`). Channel counts for width w = 64:

G: z → Dense 1024 → BN → LeakyReLU(0.2) → Dense 7·7·128 → BN → LeakyReLU → reshape 7×7×128
   → ConvT 64 4×4 s2 SAME → BN → LeakyReLU → ConvT C 4×4 s2 SAME → sigmoid (or tanh).
D: Conv 64 4×4 s2 SAME → LeakyReLU(0.2) → Conv 128 4×4 s2 SAME → [BN] → LeakyReLU → flatten
   → Dense 1024 → [BN] → LeakyReLU → Dense 1 (a logit); [BN] only with
   `discriminator_batch_norm` (compare_gan's `discriminator_batchnorm`).
Every layer has a bias; kernels start N(0, 0.02) (truncated at 2σ for the convolutions, as TF's
truncated_normal_initializer), biases 0: this initialisation is part of what the architecture
reproduces, so it takes only `config.init = "flax"` (the default, meaning "the architecture's
own") and refuses the other schemes in one line rather than silently replacing compare_gan's
init; `config.init_stddev` sets its scale. BatchNorm as tf.contrib.layers.batch_norm there:
decay 0.999, ε 1e-3, scale and offset, in float32 whatever the compute dtype.
For H×W images G starts at (H/4)×(W/4): H and W divisible by 4. Unconditional only.
"""

import flax.linen as nn
import jax.numpy as jnp

from genimg_jax import config_checks as checks
from genimg_jax.errors import UserError
from genimg_jax.models import conv_layers
from genimg_jax.models.mlp import get_activation

_INIT_MESSAGE = ("config.init={init!r}: architecture infogan follows compare_gan's "
                 "initialisation (kernels N(0, init_stddev), zero biases): leave config.init "
                 "at 'flax' and set config.init_stddev")


def _batch_norm(train: bool, momentum: float, epsilon: float, axis_name):
  return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon,
                      dtype=jnp.float32, axis_name=axis_name)


class Generator(nn.Module):
  """z [B, L] → images [B, H, W, C] in the output range."""

  image_shape: tuple  # (H, W, C), H and W divisible by 4.
  width: int = 64  # w: Dense 16w, then 2w channels at H/4, w at H/2.
  output_activation: str = "sigmoid"
  leaky_relu_slope: float = 0.2
  batch_norm_momentum: float = 0.999
  batch_norm_epsilon: float = 1e-3
  init_stddev: float = 0.02
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # pmap's axis: batch statistics over every device.

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    del labels  # Unconditional.
    height, width, channels = self.image_shape
    normal = nn.initializers.normal(self.init_stddev)
    bn = lambda: _batch_norm(train, self.batch_norm_momentum, self.batch_norm_epsilon,
                             self.batch_norm_axis_name)
    act = lambda x: nn.leaky_relu(x, self.leaky_relu_slope)
    x = act(bn()(nn.Dense(16 * self.width, kernel_init=normal, dtype=self.dtype)(z)))
    start = 2 * self.width
    x = nn.Dense(start * (height // 4) * (width // 4), kernel_init=normal, dtype=self.dtype)(x)
    x = act(bn()(x)).reshape((z.shape[0], height // 4, width // 4, start))
    x = conv_layers.conv_transpose(self.width, (4, 4), (2, 2), padding="SAME",
                                   kernel_init=normal, dtype=self.dtype)(x)
    x = act(bn()(x))
    x = conv_layers.conv_transpose(channels, (4, 4), (2, 2), padding="SAME",
                                   kernel_init=normal, dtype=self.dtype)(x)
    return get_activation(self.output_activation)(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """images [B, H, W, C] → logits [B] (float32)."""

  width: int = 64  # w: Conv w, Conv 2w, Dense 16w.
  batch_norm: bool = True  # BN after the second conv and the hidden Dense.
  leaky_relu_slope: float = 0.2
  batch_norm_momentum: float = 0.999
  batch_norm_epsilon: float = 1e-3
  init_stddev: float = 0.02
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # pmap's axis: batch statistics over every device.

  @nn.compact
  def __call__(self, images, labels=None, train: bool = True):
    del labels  # Unconditional.
    normal = nn.initializers.normal(self.init_stddev)
    truncated = nn.initializers.truncated_normal(self.init_stddev)
    act = lambda x: nn.leaky_relu(x, self.leaky_relu_slope)
    norm = lambda x: (_batch_norm(train, self.batch_norm_momentum, self.batch_norm_epsilon,
                                  self.batch_norm_axis_name)(x) if self.batch_norm else x)
    x = act(conv_layers.Conv(self.width, (4, 4), (2, 2), padding="SAME", kernel_init=truncated,
                             dtype=self.dtype)(images))
    x = conv_layers.Conv(2 * self.width, (4, 4), (2, 2), padding="SAME", kernel_init=truncated,
                         dtype=self.dtype)(x)
    x = act(norm(x)).reshape((images.shape[0], -1))
    x = act(norm(nn.Dense(16 * self.width, kernel_init=normal, dtype=self.dtype)(x)))
    logits = nn.Dense(1, kernel_init=normal, dtype=self.dtype)(x)
    return logits.astype(jnp.float32)[:, 0]


def check_config(config) -> None:
  """The keys gan_networks reads (configs/_lucic.py)."""
  checks.positive_int(config, "generator_width", "discriminator_width")
  checks.boolean(config, "discriminator_batch_norm")
  checks.fraction(config, "batch_norm_momentum")
  checks.positive(config, "batch_norm_epsilon", "init_stddev")
  checks.non_negative(config, "leaky_relu_slope")
  if config.init != "flax":
    raise UserError(_INIT_MESSAGE.format(init=config.init))
  if config.conditional:
    raise UserError(f"config.conditional: model {config.model!r} (architecture infogan) has "
                    f"no class-conditional networks: use --model cgan for a conditional GAN")


def gan_networks(config, image_shape, num_classes: int = 0):
  """(Generator, Discriminator) for `image_shape`; ValueError when H or W is not divisible by 4."""
  del num_classes  # Unconditional.
  if config.init != "flax":
    raise ValueError(_INIT_MESSAGE.format(init=config.init))
  height, width, _ = image_shape
  if height % 4 or width % 4:
    raise ValueError(f"the InfoGAN generator makes images whose sides are divisible by 4, not "
                     f"{'×'.join(map(str, image_shape))}")
  dtype = jnp.dtype(config.compute_dtype)
  shared = {"leaky_relu_slope": config.leaky_relu_slope,
            "batch_norm_momentum": config.batch_norm_momentum,
            "batch_norm_epsilon": config.batch_norm_epsilon, "init_stddev": config.init_stddev,
            "dtype": dtype}
  generator = Generator(tuple(image_shape), config.generator_width, config.output_activation,
                        **shared)
  discriminator = Discriminator(config.discriminator_width, config.discriminator_batch_norm,
                                **shared)
  return generator, discriminator


# Narrow widths for tests and smoke runs: same layers, fewer channels.
SMALL = {"generator_width": 4, "discriminator_width": 4, "latent_dim": 8}
