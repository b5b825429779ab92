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
  if (schedule or config.lr_schedule) == "linear":
    return optax.linear_schedule(config.learning_rate, 0.0,
                                 transition_steps=config.num_steps * updates_per_step)
  return config.learning_rate


def adam_from_config(config, updates_per_step: int = 1,
                     schedule: str | None = None) -> optax.GradientTransformation:
  """Adam(learning_rate(config, ...), b1=config.adam_b1, b2=config.adam_b2)."""
  return optax.adam(learning_rate(config, updates_per_step, schedule), b1=config.adam_b1,
                    b2=config.adam_b2)


def ema_update(ema_params, params, decay: float):
  """θ_ema ← decay·θ_ema + (1 − decay)·θ, leaf by leaf (Polyak/EMA of the generator)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
