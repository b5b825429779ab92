"""Checks on a resolved config: valid values before a run, compatibility with a checkpoint."""

import hashlib
import json

from genimg_jax import config_checks as checks
from genimg_jax import models
from genimg_jax.errors import UserError
from genimg_jax.models import initializers
from genimg_jax.train import search, selection, sweep
from genimg_jax.train.families import family_class

# Keys a resumed run may change: they alter how long or how often, not what is computed
# (evaluation settings change what is measured, never the training state).
RESUMABLE_KEYS = ("num_steps", "log_every", "sample_every", "checkpoint_every",
                  "keep_checkpoints", "steps_per_dispatch", "data_dir", "parallel",
                  "distributed", "coordinator_address", "num_processes", "process_id",
                  "eval_every", "eval_num_samples", "eval_space", "eval_cache_dir",
                  "eval_classifier_epochs", "inception_weights",
                  "data_on_device", "data_workers",  # Streamed batches = device-drawn ones.
                  "runs_vectorize", "memory_limit_gib")
# Keys whose value here changes nothing a run computed before the key existed: left out of the
# fingerprint at this value, so checkpoints written before the key was added still resume.
NEUTRAL_DEFAULTS = {"num_runs": 1, "sweep": "", "sweep_zip": False, **search.NEUTRAL,
                    "binarize": "none",
                    "discriminator_separate_batches": False, "select_model": "last",
                    "validation_every": 0, "init": "flax", "optimizer": "adam",
                    "adam_eps": 1e-8, "kl_warmup_steps": 0, "kl_warmup_every": 1,
                    "memory_limit_gib": 0.0, "latent_distribution": "normal"}


def _check_selection(config, family) -> None:
  """select_model / validation_every: the best-validation model needs a family with a
  validation score (VAEs: −ELBO; GANs have no validation loss) and a check interval."""
  checks.choice(config, "select_model", selection.MODES)
  checks.non_negative_int(config, "validation_every")
  if config.select_model != "best_validation":
    return
  if not family.scores_test_split:
    raise UserError(f"config.select_model='best_validation' needs a validation loss, which "
                    f"{config.family} models do not have: use select_model='last' (or "
                    f"eval_every=N to keep the best-FID checkpoint)")
  if config.validation_every <= 0:
    raise UserError("config.select_model='best_validation' needs --config.validation_every=N "
                    "(steps between validation checks; pythae checks once per epoch)")


def validate(config) -> None:
  """One-line UserError for the first invalid value: the keys every model shares (declared in
  configs/common.py) here, the family's keys by the family, the architecture's by its module."""
  checks.positive_int(config, "batch_size", "num_runs", "num_steps", "steps_per_dispatch", "log_every",
                      "sample_every", "checkpoint_every", "keep_checkpoints",
                      "num_grid_samples", "eval_num_samples")
  checks.positive(config, "eval_classifier_epochs")
  checks.non_negative_int(config, "image_size", "data_shards", "num_processes", "eval_every",
                          "data_workers")
  if config.process_id < -1:
    raise UserError(f"config.process_id must be -1 (detect) or a process index, got "
                    f"{config.process_id}")
  checks.boolean(config, "data_on_device", "conditional", "distributed")
  checks.choice(config, "compute_dtype", ("float32", "bfloat16"))
  checks.choice(config, "parallel", ("jit", "pmap"))
  checks.choice(config, "runs_vectorize", ("auto", "vmap", "loop"))
  checks.choice(config, "eval_space", ("classifier", "inception"))
  checks.choice(config, "binarize", ("none", "static", "dynamic"))
  checks.choice(config, "init", initializers.SCHEMES)
  if config.eval_space == "inception" and not config.inception_weights:
    raise UserError("config.eval_space='inception' needs --config.inception_weights=PATH (a "
                    "TorchScript inception-2015-12-05.pt): set it or use eval_space classifier")
  family = family_class(config)
  family.check_config(config)
  _check_selection(config, family)
  if not isinstance(config.sweep, str):
    raise UserError(f"config.sweep must be a string {sweep.SYNTAX!r}, got {config.sweep!r}")
  checks.boolean(config, "sweep_zip")
  sweep.check_config(config, family.sweepable, validate)
  search.check_config(config, family.sweepable, validate)
  if sweep.uses_runs_axis(config) and config.binarize == "static":
    raise UserError("config.binarize='static' draws one binary data set from config.seed, which "
                    "the runs of one program share: use num_runs = 1 without a sweep, or "
                    "binarize='dynamic'")
  if config.binarize != "none" and not config.data_on_device:
    raise UserError(f"config.binarize={config.binarize!r} needs config.data_on_device=True (the "
                    f"streamed feed reads grey images): drop data_on_device=False")
  if sweep.uses_runs_axis(config) and not config.data_on_device:
    raise UserError("config.num_runs > 1 and config.sweep need config.data_on_device=True (the "
                    "streamed feed reads one run's rows): drop data_on_device=False")
  try:
    models.builder(config.architecture, family.builder)  # This family's networks exist there.
    models.load(config.architecture).check_config(config)
  except ValueError as e:
    raise UserError(f"config.architecture: {e}") from None
  except (AttributeError, KeyError) as e:  # ConfigDict: a key the config does not declare.
    key = str(e).strip("'\"")
    raise UserError(f"config.architecture={config.architecture!r} reads config.{key}, which "
                    f"model {config.model!r} does not declare: declare it in the model's "
                    f"config or pick an architecture made for this model") from None


def without_neutral(config_dict: dict) -> dict:
  """`config_dict` less the keys at their NEUTRAL_DEFAULTS value (they change nothing a run
  computed before they existed)."""
  return {k: v for k, v in config_dict.items()
          if not (k in NEUTRAL_DEFAULTS and v == NEUTRAL_DEFAULTS[k])}


def _model_settings(config_dict: dict) -> dict:
  """The settings that change what a run computes (num_steps too under a decaying schedule),
  less the keys at their NEUTRAL_DEFAULTS value."""
  decays = config_dict.get("lr_schedule", "constant") != "constant"  # VAEs have no schedule.
  return {k: v for k, v in without_neutral(config_dict).items()
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
  theirs, ours = ({**NEUTRAL_DEFAULTS, **settings} for settings in (theirs, ours))
  diffs = [f"{k}={ours.get(k)!r} here but {theirs.get(k)!r} in the checkpoint"
           for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
  raise UserError(f"checkpoint at step {step} was written by a different config "
                  f"({'; '.join(diffs) or 'unknown difference'}): use a new --workdir or "
                  f"the run's original settings")
