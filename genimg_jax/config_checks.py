"""One-line checks of config values, shared by the places that own the keys: run_config.py
(keys of configs/common.py), each family (train/gan_step.py, train/vae_step.py) and each
architecture module (genimg_jax/models/*.py). Each raises a UserError naming the key."""

from genimg_jax.errors import UserError


def positive_int(config, *keys: str) -> None:
  for key in keys:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise UserError(f"config.{key} must be a positive integer, got {value!r}")


def positive(config, *keys: str) -> None:
  for key in keys:
    if not config[key] > 0:
      raise UserError(f"config.{key} must be positive, got {config[key]}")


def non_negative(config, *keys: str) -> None:
  for key in keys:
    if not config[key] >= 0:
      raise UserError(f"config.{key} must be zero or positive, got {config[key]}")


def non_negative_int(config, *keys: str) -> None:
  for key in keys:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
      raise UserError(f"config.{key} must be zero or a positive integer, got {value!r}")


def fraction(config, *keys: str) -> None:
  """Values in [0, 1): dropout rates, decays, momenta, Adam's β1 and β2."""
  for key in keys:
    if not 0 <= config[key] < 1:
      raise UserError(f"config.{key} must lie in [0, 1), got {config[key]}")


def boolean(config, *keys: str) -> None:
  for key in keys:
    if not isinstance(config[key], bool):
      raise UserError(f"config.{key} must be True or False, got {config[key]!r}")


def widths(config, *keys: str, non_empty: bool = False) -> None:
  """Tuples of positive layer widths (at least one with `non_empty`)."""
  for key in keys:
    values = tuple(config[key])
    if (non_empty and not values) or any(int(w) <= 0 for w in values):
      raise UserError(f"config.{key} must hold positive layer widths, got {values}")


def choice(config, key: str, allowed) -> None:
  if config[key] not in allowed:
    raise UserError(f"config.{key}={config[key]!r} is not one of: "
                    f"{', '.join(str(a) for a in allowed)}")
