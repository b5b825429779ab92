"""The VAE family: training state, one pure update of the negative ELBO (β-weighted), sampling,
reconstruction and the test-set bound."""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from genimg_jax.losses import vae as vae_losses
from genimg_jax.models import mlp
from genimg_jax.train import batching, optim, parallel

DATA_RANGE = (0.0, 1.0)  # Bernoulli / sigmoid-mean likelihoods model pixels in [0, 1].


class VAEState(flax.struct.PyTreeNode):
  """Everything a VAE run's future depends on; arrays only, so Orbax saves it as is."""

  step: jnp.ndarray  # int32 scalar: updates done so far.
  rng: jnp.ndarray  # The run's PRNG key; step keys are fold_in(rng, step).
  data_order: jnp.ndarray  # int32 [N]: this epoch's visiting order of the data set.
  params: Any
  opt_state: Any


@dataclasses.dataclass(frozen=True)
class VAE:
  """Encoder/decoder, optimiser and loss settings of a VAE, built from a config."""

  model: mlp.VAE
  tx: optax.GradientTransformation
  latent_dim: int
  beta: float
  likelihood: str
  gaussian_sigma: float
  data_range: tuple[float, float] = DATA_RANGE
  axis_name: str | None = None  # pmap's device axis (train/parallel.py); None under jit.

  @classmethod
  def from_config(cls, config, image_shape, num_classes: int = 0) -> "VAE":
    act = mlp.get_activation(config.activation, config.leaky_relu_slope)
    dtype = jnp.dtype(config.compute_dtype)
    model = mlp.VAE(
        encoder=mlp.Encoder(tuple(config.encoder_hidden), config.latent_dim, act, dtype),
        decoder=mlp.Decoder(tuple(config.decoder_hidden), tuple(image_shape), act, dtype))
    return cls(model, optim.adam_from_config(config), config.latent_dim, config.beta,
               config.likelihood, config.gaussian_sigma)

  def init_state(self, rng: jnp.ndarray, num_examples: int, image_shape) -> VAEState:
    """Fresh parameters and optimiser state; `rng` becomes the run key."""
    init_key, sample_key = jax.random.split(jax.random.fold_in(rng, 0))
    params = self.model.init({"params": init_key, "sample": sample_key},
                             jnp.zeros((1, *image_shape)))
    return VAEState(step=jnp.zeros((), jnp.int32), rng=rng,
                    data_order=jnp.arange(num_examples, dtype=jnp.int32),
                    params=params, opt_state=self.tx.init(params))

  def sample_latents(self, key, num: int) -> jnp.ndarray:
    """z ~ N(0, I), [num, latent_dim]: the prior."""
    return jax.random.normal(key, (num, self.latent_dim), jnp.float32)

  def loss(self, params, images: jnp.ndarray, key) -> tuple[jnp.ndarray, dict]:
    """β-weighted negative ELBO of images in [0, 1], one z sample per image."""
    logits, mean, logvar = self.model.apply(params, images, rngs={"sample": key})
    return vae_losses.vae_loss(logits, images, mean, logvar, self.beta, self.likelihood,
                               self.gaussian_sigma)

  def train_step(self, state: VAEState, batch: dict, key) -> tuple[VAEState, dict]:
    """One Adam step on the loss. batch["image"]: uint8 [B, H, W, C]."""
    images = batching.scale_images(batch["image"], self.data_range)
    (loss, parts), grads = jax.value_and_grad(self.loss, has_aux=True)(
        state.params, images, parallel.device_key(key, self.axis_name))
    grads = parallel.mean_over_devices(grads, self.axis_name)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = parallel.mean_over_devices(
        {"loss": loss, **parts, "grad_norm": optax.tree.norm(grads)}, self.axis_name)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def eval_step(self, state: VAEState, images_u8: jnp.ndarray, key) -> dict:
    """Per-batch sums of the negative ELBO and its parts (β = 1), for a test-set mean."""
    images = batching.scale_images(images_u8, self.data_range)
    logits, mean, logvar = self.model.apply(state.params, images, rngs={"sample": key})
    recon = vae_losses.reconstruction_nll(logits, images, self.likelihood, self.gaussian_sigma)
    kl = vae_losses.kl_standard_normal(mean, logvar)
    return {"neg_elbo": jnp.sum(recon + kl), "recon": jnp.sum(recon), "kl": jnp.sum(kl)}

  def generate(self, state: VAEState, latents: jnp.ndarray) -> jnp.ndarray:
    """latents [N, latent_dim] → decoder means σ(logits), float32 [N, H, W, C] in [0, 1]."""
    logits = self.model.apply(state.params, latents, method=mlp.VAE.decode)
    return jax.nn.sigmoid(logits)

  def reconstruct(self, state: VAEState, images_u8: jnp.ndarray) -> jnp.ndarray:
    """Images → decoder mean at z = μ(x), float32 [N, H, W, C] in [0, 1]."""
    images = batching.scale_images(images_u8, self.data_range)
    mean, _ = self.model.apply(state.params, images, method=mlp.VAE.encode)
    return self.generate(state, mean)
