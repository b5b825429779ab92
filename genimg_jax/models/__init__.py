"""Flax Linen modules only, no training logic. `config.architecture` names one file here (or,
for a model kept outside this package, any importable module, such as `my_lab.nets`).

An architecture module defines `check_config(config)` (one-line UserErrors for its own keys)
and one or both builders:
* `gan_networks(config, image_shape, num_classes) -> (G, D)`:
  G(z [B, latent_dim], labels int32 [B] | None, train: bool) → images [B, H, W, C] in the
  output range (tanh: [−1, 1], sigmoid: [0, 1]; `config.output_activation`);
  D(images [B, H, W, C], labels | None, train: bool) → float32 logits [B].
  Both declare a field `batch_norm_axis_name: str | None = None`: under pmap the GAN family
  sets it to the device axis so BatchNorm averages over every device's rows (networks without
  BatchNorm accept and ignore it). Train mode turns on dropout (rng "dropout") and BatchNorm
  batch statistics ("batch_stats" mutable); spectral-norm vectors live in "spectral_stats".
* `vae_network(config, image_shape, num_classes) -> module` with
  encode(images [B, H, W, C] in [0, 1], labels | None) → (μ, log σ²), each [B, latent_dim];
  decode(z [B, latent_dim], labels | None) → pixel logits [B, H, W, C] (σ(logits) is the mean).
`num_classes > 0` means class-conditional networks. A builder raises ValueError for an image
shape it cannot take. Dense and convolution layers take their initialisation from
`config.init` (initializers.py: dense_kwargs, conv_kwargs). Other files here (conv_layers, conditional) hold shared parts.
"""

import importlib
import pkgutil
import types

BUILDERS = ("gan_networks", "vae_network")  # What makes a module an architecture.


def _module(name: str) -> types.ModuleType:
  """genimg_jax.models.<name> for a bare name, else the module at the dotted path `name`."""
  return importlib.import_module(f"{__name__}.{name}" if "." not in name else name)


def _is_local(name: str) -> bool:
  """True when `name` is a file of this package (a bare name that is not: an outside module)."""
  return "." not in name and any(m.name == name for m in pkgutil.iter_modules(__path__))


def _builders(module: types.ModuleType) -> list[str]:
  return [b for b in BUILDERS if callable(vars(module).get(b))]


def available() -> list[str]:
  """Names of the architecture modules in this package (mlp, dcgan, ...)."""
  names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
  return sorted(n for n in names if _builders(_module(n)))


def load(name: str) -> types.ModuleType:
  """The architecture module `name`: a file of this package, else any importable module
  (a fork's own, on PYTHONPATH); ValueError listing the valid names."""
  if not _is_local(name):
    try:
      module = importlib.import_module(name)
    except ImportError as e:
      raise ValueError(f"unknown architecture {name!r} ({e}): choose one of "
                       f"{', '.join(available())} (files in genimg_jax/models/), or put your "
                       f"module's folder on PYTHONPATH") from None
    if not _builders(module):
      raise ValueError(f"module {name!r} defines neither gan_networks nor vae_network")
    if not callable(vars(module).get("check_config")):
      raise ValueError(f"module {name!r} defines no check_config(config) (one-line errors for "
                       f"its own keys; a function that returns None if it has none)")
    return module
  if name not in available():
    raise ValueError(f"{name!r} is a helper file, not an architecture: choose one of "
                     f"{', '.join(available())}")
  return _module(name)


def builder(name: str, kind: str):
  """Architecture `name`'s `kind` builder ("gan_networks" or "vae_network"); ValueError when
  it has none."""
  module = load(name)
  if kind not in _builders(module):
    family = "GAN" if kind == "gan_networks" else "VAE"
    with_kind = [n for n in available() if kind in _builders(_module(n))]
    raise ValueError(f"architecture {name!r} has no {family} networks (no {kind}): use one of "
                     f"{', '.join(with_kind)}")
  return vars(module)[kind]
