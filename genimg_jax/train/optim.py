"""Optimisers from config (Optax): Adam with a constant, linearly decaying or step-decayed
step size, and the EMA of parameters."""

import optax

from genimg_jax import config_checks as checks
from genimg_jax.errors import UserError

SCHEDULES = ("constant", "linear", "multistep")  # config.lr_schedule values.


def check_config(config, schedule: bool = True) -> None:
  """The optimiser's keys: learning_rate > 0, Adam β's in [0, 1) and, for the families whose
  configs declare it (`schedule`), lr_schedule one of SCHEDULES."""
  checks.positive(config, "learning_rate")
  checks.fraction(config, "adam_b1", "adam_b2")
  if schedule:
    checks.choice(config, "lr_schedule", SCHEDULES)
    if config.lr_schedule == "multistep":  # Its keys: declared by the configs that use it.
      checks.positive(config, "lr_decay_factor")
      if any(not isinstance(b, int) or b <= 0 for b in config.lr_boundaries):
        raise UserError(f"config.lr_boundaries must be positive step counts, got "
                        f"{config.lr_boundaries!r}")


def learning_rate(config, updates_per_step: int = 1,
                  schedule: str | None = None) -> optax.Schedule | float:
  """config.learning_rate, constant or decayed linearly to 0 over the run's optimiser updates
  (num_steps · updates_per_step, e.g. n_critic for D) as StudioGAN / Mimicry do, or "multistep":
  multiplied by config.lr_decay_factor at each of config.lr_boundaries (optimiser updates; as
  PyTorch's MultiStepLR). `schedule`: config.lr_schedule unless given."""
  schedule = schedule or config.lr_schedule
  if schedule == "linear":
    return optax.linear_schedule(config.learning_rate, 0.0,
                                 transition_steps=config.num_steps * updates_per_step)
  if schedule == "multistep":
    return optax.piecewise_constant_schedule(
        config.learning_rate, {int(b) * updates_per_step: float(config.lr_decay_factor)
                               for b in config.lr_boundaries})
  return config.learning_rate


def adam_from_config(config, updates_per_step: int = 1,
                     schedule: str | None = None) -> optax.GradientTransformation:
  """Adam(learning_rate(config, ...), b1=config.adam_b1, b2=config.adam_b2)."""
  return optax.adam(learning_rate(config, updates_per_step, schedule), b1=config.adam_b1,
                    b2=config.adam_b2)


def ema_update(ema_params, params, decay: float):
  """θ_ema ← decay·θ_ema + (1 − decay)·θ, leaf by leaf (Polyak/EMA of the generator)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
