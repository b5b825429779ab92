"""The VampPrior VAE of pythae's reproducibility script (`--model vamp_pythae`; Tomczak &
Welling 2018, arXiv:1705.07120): gated MLPs and a prior that is a mixture of the encoder's
Gaussians at K learned pseudo-inputs.

  encoder: x [B, H, W, C] → flatten → GatedDense 300 → GatedDense 300
           → Dense L (μ) and Dense L → Hardtanh(−6, 2) (log σ²)
  decoder: z [B, L] → GatedDense 300 → GatedDense 300 → Dense (H·W·C) → pixel logits
  prior:   u_k = Hardtanh(0, 1)(Linear(K → H·W·C)(e_k)), the identity's rows e_k (k = 1 … K);
           (μ_k, log σ_k²) = encode(u_k); p(z) = (1/K) Σ_k N(z; μ_k, σ_k²)

GatedDense(x) = h(x) · σ(g(x)) with h, g two Dense layers (no activation on h, as the script).
Initialisation as the script: every encoder and decoder kernel N(0, 2/fan_in) (its `he_init`),
their biases and the whole pseudo-input layer PyTorch's default U(±1/√fan_in).
pythae's decoder ends in a sigmoid scored by `F.binary_cross_entropy`, whose logs are clamped
at −100; ours returns logits scored exactly (docs/models.md says when the two differ).
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax import config_checks as checks
from genimg_jax.errors import UserError
from genimg_jax.losses import vae as vae_losses
from genimg_jax.models import initializers

LOGVAR_RANGE = (-6.0, 2.0)  # The script's Hardtanh on the encoder's log σ².
PSEUDO_INPUT_RANGE = (0.0, 1.0)  # Its Hardtanh on the pseudo-inputs: pixels of a [0, 1] image.
INIT = "he_normal"  # Encoder and decoder Dense layers (initializers.py).
PSEUDO_INIT = "torch"  # The pseudo-input layer keeps PyTorch's default.

# Narrow widths for tests and smoke runs: same layers, fewer channels and pseudo-inputs.
SMALL = {"encoder_hidden": (16, 16), "decoder_hidden": (16, 16), "latent_dim": 4,
         "num_pseudo_inputs": 8}


def hardtanh(x: jnp.ndarray, low: float, high: float) -> jnp.ndarray:
  """Hardtanh(low, high)(x) = min(max(x, low), high), with PyTorch's gradient: 1 strictly
  inside (low, high), 0 from either end on (`jnp.clip` would give ½ at an end)."""
  return jnp.where(x <= low, low, jnp.where(x >= high, high, x))


class GatedDense(nn.Module):
  """x [..., D] → h(x) · σ(g(x)) [..., features], h and g Dense layers (a learned gate)."""

  features: int
  init_scheme: str = INIT  # initializers.SCHEMES name of every Dense layer.
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    init = initializers.dense_kwargs(self.init_scheme, x.shape[-1])
    h = nn.Dense(self.features, dtype=self.dtype, name="h", **init)(x)
    g = nn.Dense(self.features, dtype=self.dtype, name="g", **init)(x)
    return h * nn.sigmoid(g)


class Encoder(nn.Module):
  """images [B, H, W, C] → flatten → GatedDense(h) … → (μ [B, L], Hardtanh(−6, 2) log σ² [B, L])."""

  hidden: Sequence[int]
  latent_dim: int
  init_scheme: str = INIT  # initializers.SCHEMES name of every Dense layer.
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images, labels=None):
    del labels  # Unconditional.
    x = images.reshape((images.shape[0], -1))
    for width in self.hidden:
      x = GatedDense(width, self.init_scheme, self.dtype)(x)
    init = initializers.dense_kwargs(self.init_scheme, x.shape[-1])
    mean = nn.Dense(self.latent_dim, dtype=self.dtype, name="mean", **init)(x)
    logvar = nn.Dense(self.latent_dim, dtype=self.dtype, name="logvar", **init)(x)
    return mean.astype(jnp.float32), hardtanh(logvar.astype(jnp.float32), *LOGVAR_RANGE)


class Decoder(nn.Module):
  """z [B, L] → GatedDense(h) … → Dense(H·W·C) → pixel logits [B, H, W, C]."""

  hidden: Sequence[int]
  image_shape: Sequence[int]
  init_scheme: str = INIT  # initializers.SCHEMES name of every Dense layer.
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None):
    del labels  # Unconditional.
    x = z
    for width in self.hidden:
      x = GatedDense(width, self.init_scheme, self.dtype)(x)
    init = initializers.dense_kwargs(self.init_scheme, x.shape[-1])
    logits = nn.Dense(int(np.prod(self.image_shape)), dtype=self.dtype, **init)(x)
    return logits.astype(jnp.float32).reshape((z.shape[0], *self.image_shape))


class VampVAE(nn.Module):
  """Encoder, decoder and the VampPrior: the VAE family's encode / decode, plus the prior's
  log density `log_prior(z)` and its sampler `sample_prior(noise)` (train/vae_step.py uses
  them in place of N(0, I) when a network has them)."""

  encoder: nn.Module
  decoder: nn.Module
  image_shape: Sequence[int]
  num_pseudo_inputs: int  # K.
  pseudo_init: str = PSEUDO_INIT  # initializers.SCHEMES name of the pseudo-input layer.

  def setup(self):
    # Linear(K → D) applied to the K × K identity is its kernel's rows plus the bias: kept as
    # those two parameters, so no K × K × D product is computed for an exact copy.
    k, d = self.num_pseudo_inputs, int(np.prod(self.image_shape))
    initializers.check(self.pseudo_init)
    self.pseudo_kernel = self.param("pseudo_kernel", initializers.kernel_init(self.pseudo_init, k),
                                    (k, d))
    self.pseudo_bias = self.param("pseudo_bias", initializers.bias_init(self.pseudo_init, k), (d,))

  def __call__(self, images, labels=None):
    """Decodes at z = μ and scores μ under the prior (used to create every parameter)."""
    mean, _ = self.encode(images, labels)
    return self.decode(mean, labels), self.log_prior(mean)

  def encode(self, images, labels=None):
    return self.encoder(images, labels)

  def decode(self, z, labels=None):
    return self.decoder(z, labels)

  def pseudo_inputs(self) -> jnp.ndarray:
    """u = Hardtanh(0, 1)(I_K · W + b): the K pseudo-inputs [K, H, W, C] in [0, 1]."""
    u = hardtanh(self.pseudo_kernel + self.pseudo_bias, *PSEUDO_INPUT_RANGE)
    return u.reshape((self.num_pseudo_inputs, *self.image_shape))

  def prior_components(self) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(μ_k, log σ_k²) [K, L]: the encoder's Gaussians at the pseudo-inputs."""
    return self.encoder(self.pseudo_inputs(), None)

  def log_prior(self, z: jnp.ndarray) -> jnp.ndarray:
    """log p(z) = log (1/K) Σ_k N(z; μ_k, σ_k²) for z [..., L] → [...]."""
    means, logvars = self.prior_components()
    return vae_losses.log_normal_mixture(z, means, logvars)

  def sample_prior(self, noise: jnp.ndarray) -> jnp.ndarray:
    """noise [N, L + 1] ~ N(0, I) → z [N, L] ~ p(z): component k = ⌊K·Φ(noise₀)⌋ (uniform over
    the K), then z = μ_k + σ_k · noise₁…L."""
    means, logvars = self.prior_components()
    k = self.num_pseudo_inputs
    u = jax.scipy.stats.norm.cdf(noise[:, 0])
    component = jnp.clip(jnp.floor(u * k).astype(jnp.int32), 0, k - 1)
    return means[component] + jnp.exp(0.5 * logvars[component]) * noise[:, 1:]


def check_config(config) -> None:
  """The keys the builder reads: GatedDense widths, K; unconditional only."""
  checks.widths(config, "encoder_hidden", "decoder_hidden", non_empty=True)
  checks.positive_int(config, "num_pseudo_inputs")
  if config.conditional:
    raise UserError("architecture 'vamp' has no class-conditional VAE: use "
                    "--config.conditional=False or --model cvae")


def vae_network(config, image_shape, num_classes: int = 0) -> VampVAE:
  """The VampPrior VAE from a config: GatedDense widths `encoder_hidden` / `decoder_hidden`,
  `latent_dim`, K = `num_pseudo_inputs`, encoder and decoder layers initialised by
  `config.init` (the pseudo-input layer keeps PyTorch's default, as pythae's)."""
  if num_classes > 0:
    raise ValueError("architecture 'vamp' has no class-conditional VAE")
  dtype = jnp.dtype(config.compute_dtype)
  scheme = config.init  # configs/vamp_pythae.py: "he_normal", the script's he_init.
  return VampVAE(
      encoder=Encoder(tuple(config.encoder_hidden), config.latent_dim, init_scheme=scheme,
                      dtype=dtype),
      decoder=Decoder(tuple(config.decoder_hidden), tuple(image_shape), init_scheme=scheme,
                      dtype=dtype),
      image_shape=tuple(image_shape), num_pseudo_inputs=config.num_pseudo_inputs)
