"""Flax Linen modules only, no training logic. `config.architecture` names one file here.

An architecture file defines `gan_networks(config, image_shape, num_classes)` → (G, D) and/or
`vae_network(config, image_shape, num_classes)` → VAE module; other files hold shared parts.
"""

import importlib
import pkgutil
import types

BUILDERS = ("gan_networks", "vae_network")  # What makes a module an architecture.


def available() -> list[str]:
  """Names of the architecture modules in this package (mlp, dcgan, ...)."""
  names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
  return sorted(n for n in names if any(hasattr(_module(n), b) for b in BUILDERS))


def _module(name: str) -> types.ModuleType:
  return importlib.import_module(f"{__name__}.{name}")


def load(name: str) -> types.ModuleType:
  """The architecture module `genimg_jax.models.<name>`; ValueError listing the valid names."""
  if name not in available():
    raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(available())} "
                     f"(each is a file in genimg_jax/models/)")
  return _module(name)
