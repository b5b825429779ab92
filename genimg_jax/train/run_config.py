"""Checks on a resolved config: valid values before a run, compatibility with a checkpoint."""

import hashlib
import json

from genimg_jax import models
from genimg_jax.errors import UserError
from genimg_jax.losses.gan import GAN_LOSSES
from genimg_jax.models.mlp import get_activation
from genimg_jax.train.families import FAMILIES
from genimg_jax.train.gan_step import OUTPUT_RANGES
from genimg_jax.train.optim import SCHEDULES
from genimg_jax.train.vae_step import OBJECTIVES

# Keys checked when present in a config (model configs add their own keys).
POSITIVE_INT_KEYS = ("batch_size", "num_steps", "steps_per_dispatch", "log_every", "sample_every",
                     "checkpoint_every", "keep_checkpoints", "num_grid_samples", "latent_dim",
                     "eval_batch_size", "num_recon", "n_critic", "generator_base_channels",
                     "generator_width", "discriminator_width", "label_embed_dim",
                     "num_importance_samples", "eval_num_samples")
POSITIVE_FLOAT_KEYS = ("learning_rate", "gaussian_sigma", "eval_classifier_epochs")
NON_NEGATIVE_KEYS = ("leaky_relu_slope", "beta", "gp_weight", "image_size", "data_shards",
                     "num_processes", "eval_every", "data_workers")
BOOL_KEYS = ("data_on_device",)
FRACTION_KEYS = ("discriminator_dropout", "ema_decay", "batch_norm_momentum")  # In [0, 1).
WIDTH_KEYS = ("generator_hidden", "discriminator_hidden", "encoder_hidden", "decoder_hidden",
              "discriminator_channels", "conv_channels")
ADAM_BETA_KEYS = ("adam_b1", "adam_b2")  # Must lie in [0, 1).
CHOICES = {  # key → allowed values (keys absent from a config are skipped).
    "family": tuple(FAMILIES),
    "output_activation": tuple(OUTPUT_RANGES),
    "loss": tuple(GAN_LOSSES),
    "lr_schedule": SCHEDULES,
    "likelihood": ("bernoulli", "gaussian"),
    "objective": OBJECTIVES,
    "compute_dtype": ("float32", "bfloat16"),
    "parallel": ("jit", "pmap"),
    "eval_space": ("classifier", "inception"),
}
# Keys a resumed run may change: they alter how long or how often, not what is computed
# (evaluation settings change what is measured, never the training state).
RESUMABLE_KEYS = ("num_steps", "log_every", "sample_every", "checkpoint_every",
                  "keep_checkpoints", "steps_per_dispatch", "data_dir", "parallel",
                  "distributed", "coordinator_address", "num_processes", "process_id",
                  "eval_every", "eval_num_samples", "eval_space", "eval_cache_dir",
                  "eval_classifier_epochs", "inception_weights",
                  "data_on_device", "data_workers")  # Streamed batches = device-drawn ones.


def validate(config) -> None:
  """One-line UserError for the first invalid value."""
  present = lambda keys: [k for k in keys if k in config]
  for key in present(POSITIVE_INT_KEYS):
    if config[key] <= 0:
      raise UserError(f"config.{key} must be a positive integer, got {config[key]}")
  for key in present(POSITIVE_FLOAT_KEYS):
    if not config[key] > 0:
      raise UserError(f"config.{key} must be positive, got {config[key]}")
  for key in present(BOOL_KEYS):
    if not isinstance(config[key], bool):
      raise UserError(f"config.{key} must be True or False, got {config[key]!r}")
  for key in present(NON_NEGATIVE_KEYS):
    if not config[key] >= 0:
      raise UserError(f"config.{key} must be zero or positive, got {config[key]}")
  for key in present(FRACTION_KEYS + ADAM_BETA_KEYS):
    if not 0 <= config[key] < 1:
      raise UserError(f"config.{key} must lie in [0, 1), got {config[key]}")
  for key in present(WIDTH_KEYS):
    if any(int(w) <= 0 for w in config[key]) or (key == "conv_channels" and not config[key]):
      raise UserError(f"config.{key} must hold positive layer widths, got {tuple(config[key])}")
  for key, allowed in CHOICES.items():
    if key in config and config[key] not in allowed:
      raise UserError(f"config.{key}={config[key]!r} is not one of: {', '.join(allowed)}")
  if config.get("eval_space") == "inception" and not config.get("inception_weights"):
    raise UserError("config.eval_space='inception' needs --config.inception_weights=PATH (a "
                    "TorchScript inception-2015-12-05.pt): set it or use eval_space classifier")
  if config.get("objective") == "iwae" and config.beta != 1:
    raise UserError(f"config.beta={config.beta} has no effect on the iwae objective (it bounds "
                    f"log p(x) with β = 1): use --config.objective=elbo for a β-VAE")
  if "activation" in config:
    try:
      get_activation(config.activation)
    except ValueError as e:
      raise UserError(f"config.activation: {e}") from None
  if config.architecture not in models.available():
    raise UserError(f"config.architecture={config.architecture!r} is not one of: "
                    f"{', '.join(models.available())} (files in genimg_jax/models/)")


def _model_settings(config_dict: dict) -> dict:
  """The settings that change what a run computes (num_steps too under a decaying schedule)."""
  decays = config_dict.get("lr_schedule", "constant") != "constant"
  return {k: v for k, v in config_dict.items()
          if k not in RESUMABLE_KEYS or (decays and k == "num_steps")}


def fingerprint(config_dict: dict) -> str:
  """Hash of every setting that changes what a run computes."""
  text = json.dumps(_model_settings(config_dict), sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_info(config, image_shape, num_examples: int, num_classes: int = 0) -> dict:
  """The JSON record stored beside each checkpoint: enough to rebuild the state's shapes."""
  config_dict = json.loads(config.to_json())
  return {"family": config.family, "fingerprint": fingerprint(config_dict), "config": config_dict,
          "image_shape": list(image_shape), "num_examples": num_examples,
          "num_classes": num_classes}


def check_resumable(config, saved: dict, step: int) -> None:
  """One-line UserError naming the differing keys when a checkpoint came from another config."""
  current = json.loads(config.to_json())
  if fingerprint(current) == saved.get("fingerprint"):
    return
  if saved.get("family") != config.family:
    raise UserError(f"checkpoint at step {step} is from a {saved.get('family')} run "
                    f"(model {saved.get('config', {}).get('model')!r}), not {config.family}: "
                    f"use a new --workdir or --model {saved.get('config', {}).get('model')}")
  theirs, ours = _model_settings(saved.get("config", {})), _model_settings(current)
  diffs = [f"{k}={ours.get(k)!r} here but {theirs.get(k)!r} in the checkpoint"
           for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
  raise UserError(f"checkpoint at step {step} was written by a different config "
                  f"({'; '.join(diffs) or 'unknown difference'}): use a new --workdir or "
                  f"the run's original settings")
