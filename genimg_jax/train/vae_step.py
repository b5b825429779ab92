"""The VAE family, one for every VAE: state, one pure update of the β-weighted negative ELBO or
the IWAE bound, sampling (optionally class-conditional), reconstruction and test-set bounds.

The network comes from the architecture's `vae_network(config, image_shape, classes)`: a Linen
module with `encode(images, labels) → (μ, log σ²)` and `decode(z, labels) → logits`.
The reparameterised sample z = μ + σ·ε is drawn here, from an explicit key.
The prior is N(0, I) (analytic KL), unless the network has its own: methods
`log_prior(z [..., L]) → [...]` and `sample_prior(noise [N, L + 1] ~ N(0, I)) → z [N, L]`
(models/vamp.py). Then the KL is the Monte-Carlo log q(z|x) − log p(z) at the sampled z, in
the loss, the test bound and the importance weights alike, and latents are that noise.
"""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genimg_jax import config_checks as checks
from genimg_jax import models
from genimg_jax.data import batching
from genimg_jax.errors import UserError
from genimg_jax.losses import vae as vae_losses
from genimg_jax.train import conditioning, optim, parallel, selection

DATA_RANGE = (0.0, 1.0)  # Bernoulli / sigmoid-mean likelihoods model pixels in [0, 1].
OBJECTIVES = ("elbo", "iwae")
LIKELIHOODS = ("bernoulli", "gaussian")


class VAEState(flax.struct.PyTreeNode):
  """Everything a VAE run's future depends on; arrays only, so Orbax saves it as is."""

  step: jnp.ndarray  # int32 scalar: updates done so far.
  rng: jnp.ndarray  # The run key; step keys are fold_in(rng, step).
  data_order: jnp.ndarray  # int32 [N]: this epoch's visiting order of the data set.
  params: Any
  opt_state: Any
  best: Any = None  # select_model="best_validation": {"params", "score", "step"} (selection.py).


def posterior_samples(key, mean: jnp.ndarray, logvar: jnp.ndarray, num: int) -> jnp.ndarray:
  """z_i = μ + σ·ε_i, ε_i ~ N(0, I): [num, B, L] from μ, log σ² [B, L] (reparameterised)."""
  eps = jax.random.normal(key, (num, *mean.shape), jnp.float32)
  return mean + jnp.exp(0.5 * logvar) * eps


def _network(config, image_shape, num_classes: int) -> nn.Module:
  """The architecture module's VAE network; one-line UserErrors for a bad name or shape."""
  try:
    build = models.builder(config.architecture, VAE.builder)
  except ValueError as e:
    raise UserError(f"config.architecture: {e}") from None
  try:
    return build(config, tuple(image_shape), num_classes)
  except ValueError as e:
    shape = "x".join(str(d) for d in image_shape)
    raise UserError(f"model {config.model!r} cannot take {shape} images ({e}): resize them "
                    f"with --config.image_size (e.g. 32) or pick another model") from None


@dataclasses.dataclass(frozen=True)
class VAE:
  """Network, optimiser and objective of a VAE, built from a config."""

  model: nn.Module  # encode(images, labels), decode(z, labels).
  hyper: tuple  # ((key, value), …) of `sweepable`: the config's (the runs axis: one run's).
  latent_dim: int
  likelihood: str
  gaussian_sigma: float
  objective: str = "elbo"  # "elbo" (β-weighted, analytic KL) or "iwae" (k-sample bound).
  num_importance_samples: int = 1  # k of the IWAE objective.
  optimizer_kind: str = "adam"  # One of optim.OPTIMIZERS (config.optimizer).
  kl_warmup_steps: int = 0  # > 0: the KL weight β·w_t rises over these updates (elbo only).
  kl_warmup_every: int = 1  # Updates w_t holds each value (pythae: one epoch).
  num_classes: int = 0  # > 0: class-conditional; labels go into encoder and decoder.
  data_range: tuple[float, float] = DATA_RANGE
  axis_name: str | None = None  # pmap's device axis (train/parallel.py); None under jit.
  schedule: optim.Schedule = optim.Schedule()  # Of the step size (lr_schedule, if declared).
  selects_on_validation: bool = False  # Keeps the best-validation copy (select_model).

  reconstructs = True  # The capabilities of train/families.Family: a VAE has all of them.
  scores_test_split = True
  estimates_likelihood = True
  builder = "vae_network"
  sweepable = (*optim.HYPERPARAMETERS, "adam_eps", "beta")  # Values that change no shape.
  batches_per_step = 1  # One batch per update.

  @classmethod
  def check_config(cls, config) -> None:
    """The VAE family's keys (configs/vae.py)."""
    checks.positive_int(config, "latent_dim", "num_importance_samples", "num_recon",
                        "eval_batch_size")
    checks.choice(config, "likelihood", LIKELIHOODS)
    checks.choice(config, "objective", OBJECTIVES)
    checks.positive(config, "gaussian_sigma")
    checks.non_negative(config, "beta")
    checks.non_negative_int(config, "kl_warmup_steps")
    checks.positive_int(config, "kl_warmup_every")
    if config.objective == "iwae" and config.beta != 1:
      raise UserError(f"config.beta={config.beta} has no effect on the iwae objective (it bounds "
                      f"log p(x) with β = 1): use --config.objective=elbo for a β-VAE")
    if config.objective == "iwae" and config.kl_warmup_steps:
      raise UserError(f"config.kl_warmup_steps={config.kl_warmup_steps} weights the KL term of "
                      f"the elbo objective; the iwae bound has none: set it to 0 or use "
                      f"--config.objective=elbo")
    optim.check_config(config, schedule="lr_schedule" in config)  # Constant unless declared.

  @classmethod
  def from_config(cls, config, image_shape, num_classes: int = 0) -> "VAE":
    classes = num_classes if config.conditional else 0
    return cls(_network(config, image_shape, classes),
               tuple((k, config[k]) for k in cls.sweepable), config.latent_dim,
               config.likelihood, config.gaussian_sigma, config.objective,
               config.num_importance_samples, config.optimizer, config.kl_warmup_steps,
               config.kl_warmup_every, classes,
               schedule=optim.Schedule.from_config(
                   config, kind=config.lr_schedule if "lr_schedule" in config else "constant"),
               selects_on_validation=config.select_model == "best_validation")

  @property
  def hyperparameters(self) -> dict:
    """{key: value} of `sweepable` (floats; traced per-run values under the runs axis)."""
    return dict(self.hyper)

  def optimizer(self, hp: dict) -> optax.GradientTransformation:
    """The config's optimiser (Adam or RMSprop) at the values `hp` under its schedule."""
    return optim.build(self.optimizer_kind, hp, self.schedule)

  @property
  def learned_prior(self) -> bool:
    """The network brings its own prior p(z) (`log_prior`, `sample_prior`); else N(0, I)."""
    return hasattr(self.model, "log_prior")

  @property
  def noise_dim(self) -> int:
    """Width of the latents `generate` takes: z's, or the learned prior's sampling noise."""
    return self.latent_dim + 1 if self.learned_prior else self.latent_dim

  def _labels(self, labels):
    """The labels the network takes: None when unconditional (labels are then ignored)."""
    return labels if self.num_classes > 0 else None

  def init_state(self, rng: jnp.ndarray, num_examples: int, image_shape) -> VAEState:
    """Fresh parameters and optimiser state; `rng` becomes the run key."""
    labels = jnp.zeros((1,), jnp.int32) if self.num_classes > 0 else None
    params = self.model.init(jax.random.fold_in(rng, 0), jnp.zeros((1, *image_shape)), labels)
    return VAEState(step=jnp.zeros((), jnp.int32), rng=rng,
                    data_order=jnp.arange(num_examples, dtype=jnp.int32),
                    params=params, opt_state=self.optimizer(self.hyperparameters).init(params),
                    best=selection.fresh_best(params) if self.selects_on_validation else None)

  # --------------------------------------------------------------------------- objectives

  def _encode(self, params, images, labels):
    return self.model.apply(params, images, self._labels(labels), method="encode")

  def _decode(self, params, z, labels):
    return self.model.apply(params, z, self._labels(labels), method="decode")

  def _log_prior(self, params, z):
    """log p(z) [...] of z [..., L] under the network's own prior (learned_prior only)."""
    return self.model.apply(params, z, method="log_prior")

  def _log_weights(self, params, images, labels, key, num: int):
    """log w_i = log p(x, z_i) − log q(z_i|x), z_i ~ q: ([num, B], recon −log p(x|z_i)
    [num, B], μ, log σ²). The k samples are decoded as one batch of num·B."""
    mean, logvar = self._encode(params, images, labels)
    z = posterior_samples(key, mean, logvar, num)  # [num, B, L]
    batch = images.shape[0]
    tiled = None if labels is None else jnp.tile(labels, num)  # Matches z's [num·B] order.
    logits = self._decode(params, z.reshape((num * batch, -1)), tiled)
    tiled_images = jnp.broadcast_to(images, (num, *images.shape)).reshape(logits.shape)
    recon = vae_losses.reconstruction_nll(logits, tiled_images, self.likelihood,
                                          self.gaussian_sigma).reshape((num, batch))
    log_prior = self._log_prior(params, z) if self.learned_prior else None  # None: N(0, I).
    return (vae_losses.log_importance_weights(recon, z, mean, logvar, log_prior), recon, mean,
            logvar)

  def loss(self, params, images, labels, key, beta=1.0) -> tuple[jnp.ndarray, dict]:
    """The objective on images in [0, 1]: β-weighted negative ELBO (one z per image, analytic
    KL, or Monte-Carlo with a learned prior) or the IWAE bound −E_x[log (1/k) Σ_i w_i]."""
    if self.objective == "iwae":
      log_w, recon, mean, logvar = self._log_weights(params, images, labels, key,
                                                     self.num_importance_samples)
      # The KL reported: analytic for N(0, I); else the samples' log q − log p = −log w − recon.
      kl = -(log_w + recon) if self.learned_prior else vae_losses.kl_standard_normal(mean, logvar)
      loss = -jnp.mean(vae_losses.iwae_bound(log_w))
      # neg_elbo: the k samples' Monte-Carlo −ELBO (log-weight mean), comparable with `loss`.
      return loss, {"recon": jnp.mean(recon), "kl": jnp.mean(kl), "neg_elbo": -jnp.mean(log_w)}
    mean, logvar = self._encode(params, images, labels)
    z = posterior_samples(key, mean, logvar, 1)[0]  # Same ε as the IWAE path with k = 1.
    logits = self._decode(params, z, labels)
    if self.learned_prior:
      return vae_losses.vae_loss_mc(logits, images, z, mean, logvar, self._log_prior(params, z),
                                    beta, self.likelihood, self.gaussian_sigma)
    return vae_losses.vae_loss(logits, images, mean, logvar, beta, self.likelihood,
                               self.gaussian_sigma)

  def kl_weight(self, step, beta):
    """The KL weight of update `step`: β, times the warm-up w_t while kl_warmup_steps > 0."""
    if self.kl_warmup_steps <= 0:
      return beta
    return beta * vae_losses.kl_warmup(step, self.kl_warmup_steps, self.kl_warmup_every)

  def train_step(self, state: VAEState, batch: dict, key) -> tuple[VAEState, dict]:
    """One optimiser step on the loss. batch["image"]: uint8 [B, H, W, C]; batch["label"]:
    int32 [B] (read only when conditional)."""
    images = batching.scale_images(batch["image"], self.data_range)
    labels = batch["label"] if self.num_classes > 0 else None
    hp = self.hyperparameters
    kl_weight = self.kl_weight(state.step, hp["beta"])
    (loss, parts), grads = jax.value_and_grad(self.loss, has_aux=True)(
        state.params, images, labels, parallel.device_key(key, self.axis_name), kl_weight)
    if self.kl_warmup_steps > 0:
      parts = {**parts, "kl_weight": kl_weight}
    grads = parallel.mean_over_devices(grads, self.axis_name)
    updates, opt_state = self.optimizer(hp).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = parallel.mean_over_devices(
        {"loss": loss, **parts, "grad_norm": optax.tree.norm(grads)}, self.axis_name)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  # --------------------------------------------------------------------------- sampling

  def sample_latents(self, key, num: int):
    """Prior draws: z ~ N(0, I) [num, latent] (a learned prior: its noise [num, noise_dim]);
    conditional: {"z": z, "label": random labels}."""
    if self.num_classes <= 0:
      return jax.random.normal(key, (num, self.noise_dim), jnp.float32)
    z_key, label_key = jax.random.split(key)
    return {"z": jax.random.normal(z_key, (num, self.noise_dim), jnp.float32),
            "label": conditioning.random_labels(label_key, num, self.num_classes)}

  def grid_latents(self, key, num: int):
    """(latents, cols) for a sample grid: unconditional (z [num, L], None); conditional
    ({"z", "label"}, cols): one row per class, cols = num // classes images in each row."""
    if self.num_classes <= 0:
      return self.sample_latents(key, num), None
    labels, cols = conditioning.grid_labels(num, self.num_classes)
    z = jax.random.normal(key, (labels.shape[0], self.noise_dim), jnp.float32)
    return {"z": z, "label": labels}, cols

  def generate(self, state: VAEState, latents) -> jnp.ndarray:
    """latents (z [N, L], or {"z", "label"}) → decoder means σ(logits), float32 [N, H, W, C].
    A learned prior's latents are its noise, turned into z ~ p(z) first."""
    z, labels = (latents["z"], latents["label"]) if isinstance(latents, dict) else (latents, None)
    if self.learned_prior:
      z = self.model.apply(state.params, z, method="sample_prior")
    return jax.nn.sigmoid(self._decode(state.params, z, labels))

  def reconstruct(self, state: VAEState, images_u8: jnp.ndarray, labels=None) -> jnp.ndarray:
    """Images (and their labels) → decoder mean at z = μ(x), float32 [N, H, W, C] in [0, 1]."""
    images = batching.scale_images(images_u8, self.data_range)
    mean, _ = self._encode(state.params, images, labels)
    return jax.nn.sigmoid(self._decode(state.params, mean, labels))

  # --------------------------------------------------------------------------- evaluation

  def log_importance_weights(self, state: VAEState, images_u8, labels, key,
                             num_samples: int) -> jnp.ndarray:
    """log w [num_samples, B] of uint8 images under q(z|x) (β = 1): the IWAE bound with
    k = num_samples is `losses.vae.iwae_bound` of it. Callers batch large k themselves."""
    images = batching.scale_images(images_u8, self.data_range)
    return self._log_weights(state.params, images, labels, key, num_samples)[0]

  def eval_sums(self, state: VAEState, images_u8, labels, key) -> dict:
    """Per-batch sums of the negative ELBO (β = 1, one z per image; analytic KL, or the
    Monte-Carlo one of a learned prior) and its parts."""
    images = batching.scale_images(images_u8, self.data_range)
    mean, logvar = self._encode(state.params, images, labels)
    z = posterior_samples(key, mean, logvar, 1)[0]
    logits = self._decode(state.params, z, labels)
    recon = vae_losses.reconstruction_nll(logits, images, self.likelihood, self.gaussian_sigma)
    if self.learned_prior:
      kl = vae_losses.kl_monte_carlo(z, mean, logvar, self._log_prior(state.params, z))
    else:
      kl = vae_losses.kl_standard_normal(mean, logvar)
    return {"neg_elbo": jnp.sum(recon + kl), "recon": jnp.sum(recon), "kl": jnp.sum(kl)}

  def evaluate(self, state: VAEState, test_images_u8, test_labels, key,
               batch_size: int) -> dict[str, float]:
    """Test-split negative ELBO (β = 1) in nats per image, its parts and bits per dimension."""
    eval_sums = _jitted_eval_sums(self)  # Compiled once per family (validation calls it often).
    batches = []
    for i, start in enumerate(range(0, len(test_images_u8), batch_size)):
      labels = None if test_labels is None else test_labels[start:start + batch_size]
      batches.append(eval_sums(state, test_images_u8[start:start + batch_size], labels,
                               jax.random.fold_in(key, i)))
    totals = {}
    for sums in jax.device_get(batches):  # One transfer; summed on the host in float64.
      for name, value in sums.items():
        totals[name] = totals.get(name, 0.0) + float(value)
    n = len(test_images_u8)
    neg_elbo = totals["neg_elbo"] / n
    dims = int(np.prod(test_images_u8.shape[1:]))
    return {"test_neg_elbo": neg_elbo, "test_recon": totals["recon"] / n,
            "test_kl": totals["kl"] / n, "test_bits_per_dim": neg_elbo / (dims * np.log(2.0))}

  def validation_score(self, state: VAEState, images_u8, labels, key, batch_size: int) -> float:
    """The score that selects the best model (select_model="best_validation"): the negative
    ELBO (β = 1, one z per image) of the validation split, as pythae's validation loss."""
    return self.evaluate(state, images_u8, labels, key, batch_size)["test_neg_elbo"]


@functools.lru_cache(maxsize=None)
def _jitted_eval_sums(family: VAE):
  """jax.jit(family.eval_sums), one per (hashable, frozen) family."""
  return jax.jit(family.eval_sums)
