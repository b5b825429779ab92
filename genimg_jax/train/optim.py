"""Optimisers from config (Optax): Adam or RMSprop with a constant, linearly decaying or
step-decayed step size, and the EMA of parameters."""

import dataclasses

import optax

from genimg_jax import config_checks as checks
from genimg_jax.errors import UserError

SCHEDULES = ("constant", "linear", "multistep")  # config.lr_schedule values.
OPTIMIZERS = ("adam", "rmsprop")  # config.optimizer values (families whose configs declare it).
ADAM_EPS = 1e-8  # Adam's ε when hp has no "adam_eps": optax's and PyTorch's default.
RMSPROP_DECAY = 0.99  # torch.optim.RMSprop's defaults: α (the square average's decay) and ε.
RMSPROP_EPS = 1e-8


def check_config(config, schedule: bool = True) -> None:
  """The optimiser's keys: learning_rate > 0, Adam β's in [0, 1), and where the config declares
  them, optimizer one of OPTIMIZERS, adam_eps > 0 and (`schedule`) lr_schedule one of SCHEDULES."""
  checks.positive(config, "learning_rate")
  checks.fraction(config, "adam_b1", "adam_b2")
  if "optimizer" in config:  # Declared by configs/vae.py; the GANs use Adam.
    checks.choice(config, "optimizer", OPTIMIZERS)
  if "adam_eps" in config:
    checks.positive(config, "adam_eps")
  if schedule:
    checks.choice(config, "lr_schedule", SCHEDULES)
    if config.lr_schedule == "multistep":  # Its keys: declared by the configs that use it.
      checks.positive(config, "lr_decay_factor")
      if any(not isinstance(b, int) or b <= 0 for b in config.lr_boundaries):
        raise UserError(f"config.lr_boundaries must be positive step counts, got "
                        f"{config.lr_boundaries!r}")


@dataclasses.dataclass(frozen=True)
class Schedule:
  """How the step size changes over a run's optimiser updates (values aside: the step size
  itself is a hyper-parameter, which a sweep may trace)."""

  kind: str = "constant"  # One of SCHEDULES.
  total_updates: int = 0  # "linear": updates to reach 0 (num_steps · updates per step).
  boundaries: tuple[int, ...] = ()  # "multistep": updates at which it is multiplied by factor.
  factor: float = 1.0

  @classmethod
  def from_config(cls, config, updates_per_step: int = 1, kind: str | None = None) -> "Schedule":
    """config.lr_schedule (or `kind`) over num_steps · updates_per_step updates (e.g. n_critic
    for D); multistep boundaries are config.lr_boundaries steps, as PyTorch's MultiStepLR."""
    kind = kind or config.lr_schedule
    if kind == "multistep":
      return cls(kind, boundaries=tuple(int(b) * updates_per_step for b in config.lr_boundaries),
                 factor=float(config.lr_decay_factor))
    return cls(kind, total_updates=config.num_steps * updates_per_step)

  def __call__(self, lr):
    """The step size (a float or an optax schedule) starting from `lr`: constant, decayed
    linearly to 0 as StudioGAN / Mimicry do, or multiplied by `factor` at each boundary."""
    if self.kind == "linear":
      return optax.linear_schedule(lr, 0.0, transition_steps=self.total_updates)
    if self.kind == "multistep":
      return optax.piecewise_constant_schedule(lr, {b: self.factor for b in self.boundaries})
    return lr


def learning_rate(config, updates_per_step: int = 1,
                  schedule: str | None = None) -> optax.Schedule | float:
  """config.learning_rate under Schedule.from_config(config, updates_per_step, schedule)."""
  return Schedule.from_config(config, updates_per_step, schedule)(config.learning_rate)


HYPERPARAMETERS = ("learning_rate", "adam_b1", "adam_b2")  # What `adam` reads from `hp`.


def adam(hp: dict, schedule: Schedule = Schedule()) -> optax.GradientTransformation:
  """Adam from hyper-parameter values `hp` (Python floats, or one run's traced values when they
  are swept): step size schedule(hp["learning_rate"]), b1 = hp["adam_b1"], b2 = hp["adam_b2"],
  ε = hp["adam_eps"] (ADAM_EPS if absent), added to √v̂ as PyTorch does.
  The optimiser state's structure does not depend on the values, so Adam can be rebuilt inside
  a step from per-run values and update a state that `init` made."""
  return optax.adam(schedule(hp["learning_rate"]), b1=hp["adam_b1"], b2=hp["adam_b2"],
                    eps=hp.get("adam_eps", ADAM_EPS))


def rmsprop(hp: dict, schedule: Schedule = Schedule()) -> optax.GradientTransformation:
  """torch.optim.RMSprop(lr) with its defaults, from `hp` (reads hp["learning_rate"] only):
  v ← α·v + (1 − α)·g², θ ← θ − lr·g / (√v + ε), α = 0.99, ε = 1e-8 outside the square root,
  v₀ = 0, no momentum, not centred, no bias correction. State: v (and the schedule's count),
  whatever the values."""
  return optax.rmsprop(schedule(hp["learning_rate"]), decay=RMSPROP_DECAY, eps=RMSPROP_EPS,
                       initial_scale=0.0, eps_in_sqrt=False, centered=False, momentum=None,
                       bias_correction=False)


def build(name: str, hp: dict, schedule: Schedule = Schedule()) -> optax.GradientTransformation:
  """The optimiser `name` (one of OPTIMIZERS) at the values `hp` under `schedule`."""
  return {"adam": adam, "rmsprop": rmsprop}[name](hp, schedule)


def adam_from_config(config, updates_per_step: int = 1,
                     schedule: str | None = None) -> optax.GradientTransformation:
  """adam(the config's values, Schedule.from_config(config, updates_per_step, schedule))."""
  return adam({k: config[k] for k in HYPERPARAMETERS},
              Schedule.from_config(config, updates_per_step, schedule))


def ema_update(ema_params, params, decay: float):
  """θ_ema ← decay·θ_ema + (1 − decay)·θ, leaf by leaf (Polyak/EMA of the generator)."""
  return optax.incremental_update(params, ema_params, step_size=1.0 - decay)
