"""The GAN family: one state pytree, one pure update (n_critic D updates, then one G update),
sampling. Every GAN model (MLP, DCGAN, the standard CNN, conditional) runs through this file;
what differs comes from the config: the networks (`config.architecture`), the loss pair
(`config.loss`), the gradient penalty, n_critic, spectral norm, the generator EMA.

One step = n_critic D updates, each on its own real batch and fresh fakes, then one G update
against the updated D (seed defect 1 fixed: each network has its own loss, gradients and
optimiser). Networks with BatchNorm run in train mode in the update (batch statistics; the
running averages advance) and in eval mode for samples; spectral norm's power-iteration vectors
advance in D updates only.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from genimg_jax import config_checks as checks
from genimg_jax import models
from genimg_jax.data import batching
from genimg_jax.errors import UserError
from genimg_jax.losses import gan as gan_losses
from genimg_jax.train import conditioning, optim, parallel, sweep

OUTPUT_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}  # Data range each output implies.
# config.latent_distribution → (key, shape) → z: the prior of G's latents, drawn alike by
# training, sample grids, generate and evaluate (conditional models: the continuous part z only).
LATENT_DISTRIBUTIONS = {
    "normal": lambda key, shape: jax.random.normal(key, shape, jnp.float32),  # N(0, I).
    "uniform": lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0),
}  # "uniform": U(−1, 1) in every coordinate, as compare_gan draws z.


class GANState(flax.struct.PyTreeNode):
  """Everything a GAN run's future depends on; arrays only, so Orbax saves it as is."""

  step: jnp.ndarray  # int32 scalar: updates done so far.
  rng: jnp.ndarray  # The run's PRNG key; step keys are fold_in(rng, step).
  data_order: jnp.ndarray  # int32 [N]: this epoch's visiting order of the data set.
  g_params: Any  # {"params": …} of G: what G's optimiser updates.
  d_params: Any  # {"params": …} of D.
  g_opt_state: Any
  d_opt_state: Any
  g_stats: Any = flax.struct.field(default_factory=dict)  # G's other collections (BN averages).
  d_stats: Any = flax.struct.field(default_factory=dict)  # D's (spectral-norm vectors u, σ).
  g_ema: Any = None  # EMA of g_params when config.ema_decay > 0, else None.


def _split_variables(variables) -> tuple[dict, dict]:
  """Flax variables → ({"params": …}, every other collection)."""
  variables = dict(variables)
  return {"params": variables.pop("params")}, variables


@dataclasses.dataclass(frozen=True)
class GAN:
  """Networks, optimisers, losses and schedule of a GAN, built from a config."""

  generator: nn.Module
  discriminator: nn.Module
  hyper: tuple  # ((key, value), …) of `sweepable`: the config's (the runs axis: one run's).
  loss: gan_losses.GANLoss
  latent_dim: int
  data_range: tuple[float, float]
  n_critic: int = 1  # D updates per step, each on its own real batch.
  separate_batches: bool = False  # D's update: real and fake in two passes, not one.
  penalty: bool = False  # The WGAN-GP gradient penalty is on (its λ > 0 in some run).
  ema: bool = False  # The state keeps an EMA of G (its decay > 0 in some run).
  g_schedule: optim.Schedule = optim.Schedule()  # Of G's step size.
  d_schedule: optim.Schedule = optim.Schedule()  # Of D's (counting its n_critic updates).
  num_classes: int = 0  # > 0: class-conditional G and D.
  latent_distribution: str = "normal"  # A key of LATENT_DISTRIBUTIONS: z's prior.
  axis_name: str | None = None  # pmap's device axis (train/parallel.py); None under jit.

  reconstructs = False  # The capabilities of train/families.Family: a GAN has none of them.
  scores_test_split = False
  estimates_likelihood = False
  selects_on_validation = False  # No validation loss: the last model is scored.
  builder = "gan_networks"
  sweepable = (*optim.HYPERPARAMETERS, "gp_weight", "ema_decay")  # Values change no shape.

  @classmethod
  def check_config(cls, config) -> None:
    """The GAN family's keys (configs/_gan.py)."""
    checks.positive_int(config, "latent_dim", "n_critic")
    checks.choice(config, "output_activation", tuple(OUTPUT_RANGES))
    checks.choice(config, "loss", tuple(gan_losses.GAN_LOSSES))
    checks.choice(config, "latent_distribution", tuple(LATENT_DISTRIBUTIONS))
    checks.non_negative(config, "gp_weight")
    checks.boolean(config, "discriminator_separate_batches")
    checks.fraction(config, "ema_decay")
    optim.check_config(config)

  @classmethod
  def from_config(cls, config, image_shape, num_classes: int = 0) -> "GAN":
    try:
      generator, discriminator = models.builder(config.architecture, cls.builder)(
          config, tuple(image_shape), num_classes)
    except ValueError as e:
      raise UserError(f"model {config.model!r}: {e}") from None
    for role, network in (("G", generator), ("D", discriminator)):
      if "batch_norm_axis_name" not in {f.name for f in dataclasses.fields(network)}:
        raise UserError(f"config.architecture={config.architecture!r}: its {role} must declare "
                        f"the field `batch_norm_axis_name: str | None = None` (the network "
                        f"contract in genimg_jax/models/__init__.py)")
    return cls(generator, discriminator, tuple((k, config[k]) for k in cls.sweepable),
               gan_losses.GAN_LOSSES[config.loss], config.latent_dim,
               OUTPUT_RANGES[config.output_activation], config.n_critic,
               config.discriminator_separate_batches,
               sweep.largest(config, "gp_weight") > 0, sweep.largest(config, "ema_decay") > 0,
               optim.Schedule.from_config(config),
               optim.Schedule.from_config(config, updates_per_step=config.n_critic),
               num_classes if config.conditional else 0,
               latent_distribution=config.latent_distribution)

  @property
  def hyperparameters(self) -> dict:
    """{key: value} of `sweepable` (floats; traced per-run values under the runs axis)."""
    return dict(self.hyper)

  def optimizers(self, hp: dict) -> tuple[optax.GradientTransformation, ...]:
    """(G's Adam, D's Adam) at the values `hp`; D's schedule counts its n_critic updates."""
    return optim.adam(hp, self.g_schedule), optim.adam(hp, self.d_schedule)

  @property
  def batches_per_step(self) -> int:
    """Real batches one step consumes (the engine draws them as [n_critic, B, ...])."""
    return self.n_critic

  def init_state(self, rng: jnp.ndarray, num_examples: int, image_shape) -> GANState:
    """Fresh parameters and optimiser states; `rng` becomes the run key."""
    g_key, d_key = jax.random.split(jax.random.fold_in(rng, 0))
    labels = jnp.zeros((1,), jnp.int32)
    g_tx, d_tx = self.optimizers(self.hyperparameters)
    g_params, g_stats = _split_variables(self.generator.init(
        g_key, jnp.zeros((1, self.latent_dim)), labels, train=False))
    d_params, d_stats = _split_variables(self.discriminator.init(
        d_key, jnp.zeros((1, *image_shape)), labels, train=False))
    return GANState(
        step=jnp.zeros((), jnp.int32), rng=rng,
        data_order=jnp.arange(num_examples, dtype=jnp.int32),
        g_params=g_params, d_params=d_params,
        g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
        g_stats=g_stats, d_stats=d_stats,
        g_ema=g_params if self.ema else None)

  # Latents: z from config.latent_distribution, plus uniform labels for conditional models.
  def _draw_z(self, key, shape):
    return LATENT_DISTRIBUTIONS[self.latent_distribution](key, shape)

  def sample_latents(self, key, num: int):
    """z [num, latent_dim] (unconditional) or {"z": z, "label": int32 [num]} (conditional)."""
    z_key, label_key = jax.random.split(key)
    z = self._draw_z(z_key, (num, self.latent_dim))
    if not self.num_classes:
      return z
    return {"z": z, "label": conditioning.random_labels(label_key, num, self.num_classes)}

  def grid_latents(self, key, num: int):
    """(latents, columns) of a sample grid: conditional grids show one row per class."""
    if not self.num_classes:
      return self.sample_latents(key, num), None
    labels, cols = conditioning.grid_labels(num, self.num_classes)
    z = self._draw_z(key, (labels.shape[0], self.latent_dim))
    return {"z": z, "label": labels}, cols

  def _train_latents(self, key, num: int):
    """sample_latents for a training step: under pmap, this device's rows of the global draw
    (so pmap and jit see the same noise and labels)."""
    z_key, label_key = jax.random.split(key)
    z = parallel.draw_rows(self._draw_z, z_key, (num, self.latent_dim), self.axis_name)
    if not self.num_classes:
      return z
    return {"z": z, "label": parallel.randint_rows(label_key, num, self.num_classes,
                                                   self.axis_name)}

  @property
  def _generator(self) -> nn.Module:
    """G, with BatchNorm statistics over every device's rows under pmap (as jit computes them)."""
    if self.axis_name is not None:
      return self.generator.clone(batch_norm_axis_name=self.axis_name)
    return self.generator

  @property
  def _discriminator(self) -> nn.Module:
    """D, likewise (the network contract: both declare batch_norm_axis_name)."""
    if self.axis_name is not None:
      return self.discriminator.clone(batch_norm_axis_name=self.axis_name)
    return self.discriminator

  @staticmethod
  def _unpack(latents):
    return (latents["z"], latents["label"]) if isinstance(latents, dict) else (latents, None)

  # Network applications: train mode returns the updated non-param collections.
  def _generate(self, params, stats, latents, train: bool, dropout_key=None):
    z, labels = self._unpack(latents)
    variables = {**params, **stats}
    if train and stats:
      images, stats = self._generator.apply(variables, z, labels, train=True,
                                           rngs={"dropout": dropout_key}, mutable=list(stats))
      return images, dict(stats)
    return self._generator.apply(variables, z, labels, train=train,
                                rngs={"dropout": dropout_key} if train else {}), stats

  def _discriminate(self, params, stats, images, labels, dropout_key):
    """D's logits in train mode (dropout on, SN vectors advance) and D's updated stats."""
    variables = {**params, **stats}
    if stats:
      logits, stats = self._discriminator.apply(variables, images, labels, train=True,
                                               rngs={"dropout": dropout_key}, mutable=list(stats))
      return logits, dict(stats)
    return self._discriminator.apply(variables, images, labels, train=True,
                                    rngs={"dropout": dropout_key}), stats

  def _d_update(self, carry, real_batch, key, hp: dict):
    """One D update on `real_batch` (uint8 images, labels) and fresh fakes; hp: this run's
    hyper-parameters."""
    d_params, d_stats, d_opt_state, g_params, g_stats = carry
    real = batching.scale_images(real_batch["image"], self.data_range)
    real_labels = real_batch.get("label")
    batch_size = real.shape[0]
    noise_key, g_drop_key, d_drop_key, gp_key = jax.random.split(key, 4)
    # In-module randomness (dropout) and α: one stream per device under pmap.
    g_drop_key, d_drop_key, gp_key = (parallel.device_key(k, self.axis_name)
                                      for k in (g_drop_key, d_drop_key, gp_key))
    latents = self._train_latents(noise_key, batch_size)
    fake, g_stats = self._generate(g_params, g_stats, latents, True, g_drop_key)
    fake = jax.lax.stop_gradient(fake)
    _, fake_labels = self._unpack(latents)
    labels = (jnp.concatenate([real_labels, fake_labels]) if self.num_classes else None)

    def d_loss_fn(params):
      if self.separate_batches:  # Each pass normalises by its own batch, as G's update does.
        logits_real, stats = self._discriminate(params, d_stats, real, real_labels, d_drop_key)
        logits_fake, stats = self._discriminate(params, stats, fake, fake_labels,
                                                jax.random.fold_in(d_drop_key, 1))
      else:
        logits, stats = self._discriminate(params, d_stats, jnp.concatenate([real, fake]),
                                           labels, d_drop_key)
        logits_real, logits_fake = logits[:batch_size], logits[batch_size:]
      loss = self.loss.discriminator(logits_real, logits_fake)
      penalty = jnp.zeros(())
      if self.penalty:
        x_hat = gan_losses.interpolate(real, fake, gp_key)
        critic = lambda x: self._discriminate(params, stats, x, real_labels, d_drop_key)[0]
        penalty = gan_losses.gradient_penalty(critic, x_hat, hp["gp_weight"])
      return loss + penalty, (stats, logits_real, logits_fake, penalty)

    (d_loss, (d_stats, logits_real, logits_fake, penalty)), grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(d_params)
    grads = parallel.mean_over_devices(grads, self.axis_name)
    updates, d_opt_state = self.optimizers(hp)[1].update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    metrics = {"d_loss": d_loss, "d_grad_norm": optax.tree.norm(grads),
               "logit_real": jnp.mean(logits_real), "logit_fake": jnp.mean(logits_fake)}
    if self.loss.probabilities:  # D(x), D(G(z)): mean probabilities of "real".
      metrics.update(d_real=jnp.mean(jax.nn.sigmoid(logits_real)),
                     d_fake=jnp.mean(jax.nn.sigmoid(logits_fake)))
    if self.penalty:
      metrics["gradient_penalty"] = penalty
    return (d_params, d_stats, d_opt_state, g_params, g_stats), metrics

  def train_step(self, state: GANState, batch: dict, key) -> tuple[GANState, dict]:
    """n_critic D updates then one G update. batch: uint8 images [B, H, W, C] and labels [B],
    or [n_critic, B, ...] when n_critic > 1 (one real batch per D update)."""
    if self.n_critic == 1:
      batch = jax.tree_util.tree_map(lambda x: x[None], batch)
    d_key, g_key = jax.random.split(key)
    d_keys = jax.random.split(d_key, self.n_critic)
    carry = (state.d_params, state.d_stats, state.d_opt_state, state.g_params, state.g_stats)
    hp = self.hyperparameters
    carry, d_metrics = jax.lax.scan(lambda c, xs: self._d_update(c, *xs, hp), carry,
                                    (batch, d_keys))
    d_params, d_stats, d_opt_state, _, g_stats = carry

    # G update against the updated D, with fresh noise (and labels).
    noise_key, g_drop_key, d_drop_key = jax.random.split(g_key, 3)
    g_drop_key, d_drop_key = (parallel.device_key(k, self.axis_name)
                              for k in (g_drop_key, d_drop_key))
    latents = self._train_latents(noise_key, batch["image"].shape[1])
    _, labels = self._unpack(latents)

    def g_loss_fn(g_params):
      fake, stats = self._generate(g_params, g_stats, latents, True, g_drop_key)
      logits, _ = self._discriminate(d_params, d_stats, fake, labels, d_drop_key)
      return self.loss.generator(logits), stats

    (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    g_grads = parallel.mean_over_devices(g_grads, self.axis_name)
    g_updates, g_opt_state = self.optimizers(hp)[0].update(g_grads, state.g_opt_state,
                                                           state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)
    g_ema = (optim.ema_update(state.g_ema, g_params, hp["ema_decay"])
             if state.g_ema is not None else None)

    metrics = {name: jnp.mean(values) for name, values in d_metrics.items()}
    metrics.update(g_loss=g_loss, g_grad_norm=optax.tree.norm(g_grads))
    metrics = parallel.mean_over_devices(metrics, self.axis_name)
    new_state = state.replace(step=state.step + 1, g_params=g_params, d_params=d_params,
                              g_opt_state=g_opt_state, d_opt_state=d_opt_state,
                              g_stats=g_stats, d_stats=d_stats, g_ema=g_ema)
    return new_state, metrics

  def generate(self, state: GANState, latents) -> jnp.ndarray:
    """latents (see sample_latents) → images float32 [N, H, W, C] in [0, 1]; G in eval mode,
    with its EMA parameters when the EMA is on."""
    params = state.g_ema if state.g_ema is not None else state.g_params
    images, _ = self._generate(params, state.g_stats, latents, train=False)
    return batching.unscale_images(images, self.data_range)
