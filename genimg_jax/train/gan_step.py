"""The GAN family: training state, one pure update (D then G), sampling.

One step = one D update on a real batch and a fresh fake batch, then one G update against the
updated D (seed defect 1 fixed: each network has its own loss, gradients and optimiser).
"""

import dataclasses
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from genimg_jax.losses import gan as gan_losses
from genimg_jax.models import mlp
from genimg_jax.train import batching, optim, parallel

OUTPUT_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}  # Data range each output implies.


class GANState(flax.struct.PyTreeNode):
  """Everything a GAN run's future depends on; arrays only, so Orbax saves it as is."""

  step: jnp.ndarray  # int32 scalar: updates done so far.
  rng: jnp.ndarray  # The run's PRNG key; step keys are fold_in(rng, step).
  data_order: jnp.ndarray  # int32 [N]: this epoch's visiting order of the data set.
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any


@dataclasses.dataclass(frozen=True)
class GAN:
  """Networks, optimisers and losses of a GAN, built from a config."""

  generator: mlp.Generator
  discriminator: mlp.Discriminator
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  generator_loss: Callable[[jnp.ndarray], jnp.ndarray]
  latent_dim: int
  data_range: tuple[float, float]
  axis_name: str | None = None  # pmap's device axis (train/parallel.py); None under jit.

  @classmethod
  def from_config(cls, config, image_shape, num_classes: int = 0) -> "GAN":
    act = mlp.get_activation(config.activation, config.leaky_relu_slope)
    dtype = jnp.dtype(config.compute_dtype)
    generator = mlp.Generator(
        hidden=tuple(config.generator_hidden), image_shape=tuple(image_shape), activation=act,
        output_activation=mlp.get_activation(config.output_activation), dtype=dtype)
    discriminator = mlp.Discriminator(
        hidden=tuple(config.discriminator_hidden), activation=act,
        dropout_rate=config.discriminator_dropout, dtype=dtype)
    return cls(generator, discriminator, optim.adam_from_config(config),
               optim.adam_from_config(config), gan_losses.GENERATOR_LOSSES[config.generator_loss],
               config.latent_dim, OUTPUT_RANGES[config.output_activation])

  def init_state(self, rng: jnp.ndarray, num_examples: int, image_shape) -> GANState:
    """Fresh parameters and optimiser states; `rng` becomes the run key."""
    g_key, d_key = jax.random.split(jax.random.fold_in(rng, 0))
    g_params = self.generator.init(g_key, jnp.zeros((1, self.latent_dim)))
    d_params = self.discriminator.init(d_key, jnp.zeros((1, *image_shape)), train=False)
    return GANState(
        step=jnp.zeros((), jnp.int32), rng=rng,
        data_order=jnp.arange(num_examples, dtype=jnp.int32),
        g_params=g_params, d_params=d_params,
        g_opt_state=self.g_tx.init(g_params), d_opt_state=self.d_tx.init(d_params))

  def sample_latents(self, key, num: int) -> jnp.ndarray:
    """z ~ N(0, I), [num, latent_dim]."""
    return jax.random.normal(key, (num, self.latent_dim), jnp.float32)

  def train_step(self, state: GANState, batch: dict, key) -> tuple[GANState, dict]:
    """One D update then one G update. batch["image"]: uint8 [B, H, W, C]."""
    real = batching.scale_images(batch["image"], self.data_range)
    batch_size = real.shape[0]
    d_noise_key, d_dropout_key, g_noise_key, g_dropout_key = jax.random.split(key, 4)
    d_dropout_key, g_dropout_key = (parallel.device_key(k, self.axis_name)  # Per device.
                                    for k in (d_dropout_key, g_dropout_key))

    # D update: L_D on real and fake together (one forward pass over [2B] rows).
    fake = self.generator.apply(state.g_params, parallel.normal_rows(
        d_noise_key, (batch_size, self.latent_dim), self.axis_name))

    def d_loss_fn(d_params):
      logits = self.discriminator.apply(d_params, jnp.concatenate([real, fake]),
                                        rngs={"dropout": d_dropout_key})
      logits_real, logits_fake = logits[:batch_size], logits[batch_size:]
      return gan_losses.discriminator_loss(logits_real, logits_fake), (logits_real, logits_fake)

    (d_loss, (logits_real, logits_fake)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(state.d_params)
    d_grads = parallel.mean_over_devices(d_grads, self.axis_name)
    d_updates, d_opt_state = self.d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)

    # G update against the updated D, with fresh noise.
    g_latents = parallel.normal_rows(g_noise_key, (batch_size, self.latent_dim), self.axis_name)

    def g_loss_fn(g_params):
      logits = self.discriminator.apply(d_params, self.generator.apply(g_params, g_latents),
                                        rngs={"dropout": g_dropout_key})
      return self.generator_loss(logits)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.g_params)
    g_grads = parallel.mean_over_devices(g_grads, self.axis_name)
    g_updates, g_opt_state = self.g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    metrics = parallel.mean_over_devices({
        "d_loss": d_loss, "g_loss": g_loss,
        "d_real": jnp.mean(jax.nn.sigmoid(logits_real)),  # D(x): mean probability "real".
        "d_fake": jnp.mean(jax.nn.sigmoid(logits_fake)),  # D(G(z)) before the D update.
        "d_grad_norm": optax.tree.norm(d_grads), "g_grad_norm": optax.tree.norm(g_grads),
    }, self.axis_name)
    new_state = state.replace(step=state.step + 1, g_params=g_params, d_params=d_params,
                              g_opt_state=g_opt_state, d_opt_state=d_opt_state)
    return new_state, metrics

  def generate(self, state: GANState, latents: jnp.ndarray) -> jnp.ndarray:
    """latents [N, latent_dim] → images float32 [N, H, W, C] in [0, 1]."""
    return batching.unscale_images(self.generator.apply(state.g_params, latents), self.data_range)
