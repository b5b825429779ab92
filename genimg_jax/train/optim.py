"""Optimisers from config (Optax): Adam with a constant or linearly decaying step size, and the
EMA of parameters."""

import optax

from genimg_jax import config_checks as checks

SCHEDULES = ("constant", "linear")  # config.lr_schedule values.


def check_config(config, schedule: bool = True) -> None:
  """The optimiser's keys: learning_rate > 0, Adam β's in [0, 1) and, for the families whose
  configs declare it (`schedule`), lr_schedule one of SCHEDULES."""
  checks.positive(config, "learning_rate")
  checks.fraction(config, "adam_b1", "adam_b2")
  if schedule:
    checks.choice(config, "lr_schedule", SCHEDULES)


def learning_rate(config, updates_per_step: int = 1,
                  schedule: str | None = None) -> optax.Schedule | float:
  """config.learning_rate, constant or decayed linearly to 0 over the run's optimiser updates
  (num_steps · updates_per_step, e.g. n_critic for D) as StudioGAN / Mimicry do. `schedule`:
  config.lr_schedule unless given (VAE configs declare none: "constant")."""
  return _step_size(config.learning_rate, schedule or config.lr_schedule,
                    config.num_steps * updates_per_step)


def _step_size(lr, schedule: str, total_updates: int):
  return (optax.linear_schedule(lr, 0.0, transition_steps=total_updates)
          if schedule == "linear" else lr)


def adam_from_config(config, updates_per_step: int = 1,
                     schedule: str | None = None) -> optax.GradientTransformation:
  """Adam(learning_rate(config, ...), b1=config.adam_b1, b2=config.adam_b2)."""
  return adam({k: config[k] for k in HYPERPARAMETERS}, schedule or config.lr_schedule,
              config.num_steps * updates_per_step)


HYPERPARAMETERS = ("learning_rate", "adam_b1", "adam_b2")  # What `adam` reads from `hp`.


def adam(hp: dict, schedule: str = "constant",
         total_updates: int = 0) -> optax.GradientTransformation:
  """Adam from hyper-parameter values `hp` (Python floats, or one run's traced values when they
  are swept): step size hp["learning_rate"], constant or decayed linearly to 0 over
  `total_updates`. The optimiser state's structure does not depend on the values, so Adam can
  be rebuilt inside a step from per-run values and update a state `init` made."""
  return optax.adam(_step_size(hp["learning_rate"], schedule, total_updates), b1=hp["adam_b1"],
                    b2=hp["adam_b2"])


def ema_update(ema_params, params, decay: float):
  """θ_ema ← decay·θ_ema + (1 − decay)·θ, leaf by leaf (Polyak/EMA of the generator)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
