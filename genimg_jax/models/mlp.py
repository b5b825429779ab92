"""The seed's MLPs (docs/models.md): generator, discriminator, encoder, decoder.

Every module takes its widths, activation and output range as arguments, so one file serves
both the exact seed (ReLU, sigmoid) and the default GAN (LeakyReLU, tanh, dropout in D).
`dtype` is the matmul compute dtype (bf16 optional); parameters always stay float32.
"""

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax import config_checks as checks
from genimg_jax.errors import UserError
from genimg_jax.models import initializers as inits

Activation = Callable[[jnp.ndarray], jnp.ndarray]
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "identity")  # get_activation's names.


def get_activation(name: str, leaky_relu_slope: float = 0.2) -> Activation:
  """The activation a config names: "relu", "leaky_relu", "tanh", "sigmoid" or "identity"."""
  activations = {  # Keys: ACTIVATIONS.
      "relu": nn.relu,
      "leaky_relu": lambda x: nn.leaky_relu(x, negative_slope=leaky_relu_slope),
      "tanh": jnp.tanh,
      "sigmoid": nn.sigmoid,
      "identity": lambda x: x,
  }
  if name not in activations:
    raise ValueError(f"unknown activation {name!r}: use one of {', '.join(activations)}")
  return activations[name]


def dense(features: int, x, dtype, init: str = "flax", **kwargs):
  """nn.Dense(features) applied to x, its parameters initialised by scheme `init` (fan-in: x's
  width); inside a compact method, so the layer belongs to the calling module."""
  return nn.Dense(features, dtype=dtype, **kwargs, **inits.dense_kwargs(init, x.shape[-1]))(x)


def hidden_layers(x, widths, activation, dtype, dropout_rate: float = 0.0, train: bool = False,
                  init: str = "flax"):
  """Dense(w) → activation (→ dropout) for each width; called inside a compact method, so the
  layers belong to (and are named in) the calling module: Dense_0, Dense_1, ..."""
  for width in widths:
    x = activation(dense(width, x, dtype, init))
    if dropout_rate > 0:
      x = nn.Dropout(dropout_rate, deterministic=not train)(x)
  return x


class Generator(nn.Module):
  """z [B, latent] → Dense(h) act … → Dense(prod(image_shape)) out_act → images [B, *image_shape]."""

  hidden: Sequence[int]
  image_shape: Sequence[int]  # (H, W, C)
  activation: Activation = nn.relu
  output_activation: Activation = nn.sigmoid
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # No BatchNorm here (the GAN network contract).
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    del labels, train  # Unconditional; no train-time behaviour (the uniform GAN interface).
    x = hidden_layers(z, self.hidden, self.activation, self.dtype, init=self.init_scheme)
    x = dense(int(np.prod(self.image_shape)), x, self.dtype, self.init_scheme)
    x = self.output_activation(x.astype(jnp.float32))
    return x.reshape((z.shape[0], *self.image_shape))


class Discriminator(nn.Module):
  """images [B, H, W, C] → flatten → Dense(h) act dropout … → Dense(1) → logits [B].

  Returns the logit l(x); D(x) = σ(l) is folded into the losses (log σ(l) is computed stably).
  """

  hidden: Sequence[int]
  activation: Activation = nn.relu
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32
  batch_norm_axis_name: str | None = None  # No BatchNorm here (the GAN network contract).
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, images, labels=None, train: bool = True):
    del labels  # Unconditional.
    x = images.reshape((images.shape[0], -1))
    x = hidden_layers(x, self.hidden, self.activation, self.dtype, self.dropout_rate, train,
                      self.init_scheme)
    logits = dense(1, x, self.dtype, self.init_scheme)
    return logits[:, 0].astype(jnp.float32)


def check_config(config) -> None:
  """The keys the builders below read: the GAN's or the VAE's widths, activation, dropout
  (config.init, shared by every model, is checked by run_config.validate)."""
  if config.activation not in ACTIVATIONS:
    raise UserError(f"config.activation: unknown activation {config.activation!r}: use one of "
                    f"{', '.join(ACTIVATIONS)}")
  checks.non_negative(config, "leaky_relu_slope")
  if config.family == "gan":
    checks.widths(config, "generator_hidden", "discriminator_hidden")
    checks.fraction(config, "discriminator_dropout")
  else:
    checks.widths(config, "encoder_hidden", "decoder_hidden")


def gan_networks(config, image_shape, num_classes: int = 0):
  """(Generator, Discriminator) of the seed's MLP GAN from config (widths, activations)."""
  if config.conditional:
    raise ValueError("architecture 'mlp' has no class-conditional GAN: use --model cgan")
  act = get_activation(config.activation, config.leaky_relu_slope)
  dtype = jnp.dtype(config.compute_dtype)
  generator = Generator(
      hidden=tuple(config.generator_hidden), image_shape=tuple(image_shape), activation=act,
      output_activation=get_activation(config.output_activation), dtype=dtype,
      init_scheme=config.init)
  discriminator = Discriminator(
      hidden=tuple(config.discriminator_hidden), activation=act,
      dropout_rate=config.discriminator_dropout, dtype=dtype, init_scheme=config.init)
  return generator, discriminator


class Encoder(nn.Module):
  """images [B, H, W, C] (+ labels [B]) → flatten (‖ one-hot) → Dense(h) act …
  → (μ [B, latent], log σ² [B, latent]).

  With num_classes > 0 the one-hot label is concatenated to the flattened image (docs/models.md).
  """

  hidden: Sequence[int]
  latent_dim: int
  activation: Activation = nn.relu
  dtype: jnp.dtype = jnp.float32
  num_classes: int = 0  # > 0: class-conditional (labels required).
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, images, labels=None):
    x = with_one_hot(images.reshape((images.shape[0], -1)), labels, self.num_classes)
    x = hidden_layers(x, self.hidden, self.activation, self.dtype, init=self.init_scheme)
    mean = dense(self.latent_dim, x, self.dtype, self.init_scheme, name="mean")
    logvar = dense(self.latent_dim, x, self.dtype, self.init_scheme, name="logvar")
    return mean.astype(jnp.float32), logvar.astype(jnp.float32)


class Decoder(nn.Module):
  """z [B, latent] (‖ one-hot labels) → Dense(h) act … → Dense(prod(image_shape))
  → pixel logits [B, H, W, C].

  Logits, not probabilities: σ(logits) is the Bernoulli mean (and the Gaussian mean).
  """

  hidden: Sequence[int]
  image_shape: Sequence[int]
  activation: Activation = nn.relu
  dtype: jnp.dtype = jnp.float32
  num_classes: int = 0  # > 0: the one-hot label is concatenated to z.
  init_scheme: str = "flax"  # config.init (initializers.SCHEMES); `init` is Module.init.

  @nn.compact
  def __call__(self, z, labels=None):
    x = with_one_hot(z, labels, self.num_classes)
    x = hidden_layers(x, self.hidden, self.activation, self.dtype, init=self.init_scheme)
    logits = dense(int(np.prod(self.image_shape)), x, self.dtype, self.init_scheme)
    return logits.astype(jnp.float32).reshape((z.shape[0], *self.image_shape))


def with_one_hot(x, labels, num_classes: int):
  """x [B, D] → [B, D + num_classes] with the one-hot labels appended; x itself when
  num_classes == 0 (unconditional: labels are ignored)."""
  if num_classes <= 0:
    return x
  if labels is None:
    raise ValueError("this network is class-conditional: pass labels")
  return jnp.concatenate([x, jax.nn.one_hot(labels, num_classes, dtype=x.dtype)], axis=-1)


class VAE(nn.Module):
  """An encoder/decoder pair of any architecture, with the two methods the VAE family uses.

  encode(images, labels) → (μ, log σ²) [B, latent]; decode(z, labels) → pixel logits
  [B, H, W, C]. The reparameterised sample z = μ + σ·ε is drawn by the family with an explicit
  key (train/vae_step.py), so the module is deterministic. `__call__` decodes at z = μ
  (used to create the parameters).
  """

  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, images, labels=None):
    mean, logvar = self.encode(images, labels)
    return self.decode(mean, labels), mean, logvar

  def encode(self, images, labels=None):
    return self.encoder(images, labels)

  def decode(self, z, labels=None):
    return self.decoder(z, labels)


def vae_network(config, image_shape, num_classes: int = 0) -> VAE:
  """The seed's MLP VAE from a config: Dense widths `encoder_hidden` / `decoder_hidden`,
  `latent_dim`, `activation`; conditional on `num_classes` labels when > 0."""
  act = get_activation(config.activation, config.leaky_relu_slope)
  dtype = jnp.dtype(config.compute_dtype)
  return VAE(
      encoder=Encoder(tuple(config.encoder_hidden), config.latent_dim, act, dtype, num_classes,
                      config.init),
      decoder=Decoder(tuple(config.decoder_hidden), tuple(image_shape), act, dtype, num_classes,
                      config.init))


# Narrow widths for tests and smoke runs: same layers, fewer channels.
SMALL = dict(generator_hidden=(16, 32, 64), discriminator_hidden=(64, 32, 16),
             encoder_hidden=(16,), decoder_hidden=(16,), latent_dim=8)
