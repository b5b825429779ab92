"""Flax Linen modules only, no training logic. `config.architecture` names one file here."""

import importlib
import pkgutil
import types


def available() -> list[str]:
  """Names of the architecture modules in this package (mlp, dcgan, ...)."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str) -> types.ModuleType:
  """The architecture module `genimg_jax.models.<name>`; ValueError listing the valid names."""
  if name not in available():
    raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(available())} "
                     f"(each is a file in genimg_jax/models/)")
  return importlib.import_module(f"{__name__}.{name}")
