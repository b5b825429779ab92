"""Configs for the command line: `configs/NAME.py` by model name, `--config.KEY=VALUE` overrides.

Overrides are parsed against the type of the existing value (ints, floats, bools, strings,
tuples), so a typo or a wrong type is one clear error instead of a silently new key.
"""

import ast
import importlib.util
import os

import ml_collections

from genimg_jax.errors import UserError

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
_BOOLS = {"true": True, "false": False, "1": True, "0": False}


def available_models(configs_dir: str = CONFIGS_DIR) -> list[str]:
  """Every model name: the files of configs/ but common.py and the bases ("_*.py")."""
  return sorted(f[:-3] for f in os.listdir(configs_dir)
                if f.endswith(".py") and f != "common.py" and not f.startswith("_"))


def load_config(model: str, configs_dir: str = CONFIGS_DIR) -> ml_collections.ConfigDict:
  """`configs/<model>.py`'s get_config() (or, when `model` is a path to a .py file, that
  file's), with the model name recorded in `config.model`."""
  if model.endswith(".py"):  # A config kept outside configs/, e.g. in a fork's own folder.
    path, model = model, os.path.basename(model)[:-3]
    if not os.path.isfile(path):
      raise UserError(f"config file {path} does not exist: give a path to a .py file with "
                      f"get_config(), or a model name from {configs_dir}")
  else:
    models = available_models(configs_dir)
    if model not in models:
      raise UserError(f"unknown model {model!r}: choose one of {', '.join(models)} "
                      f"(each is a file in {configs_dir}), or give a path to a config file")
    path = os.path.join(configs_dir, f"{model}.py")
  spec = importlib.util.spec_from_file_location(f"configs.{model}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not callable(getattr(module, "get_config", None)):
    raise UserError(f"config file {path} defines no get_config(): give it one that returns an "
                    f"ml_collections.ConfigDict (see configs/gan.py)")
  config = module.get_config()
  config.model = model
  return config


def _parse_like(text: str, current, key: str):
  """`text` converted to the type of `current`; UserError if it does not parse as one."""
  kind = type(current)
  try:
    if isinstance(current, bool):
      if text.lower() not in _BOOLS:
        raise ValueError
      return _BOOLS[text.lower()]
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
    if isinstance(current, str):
      return text
    if isinstance(current, (tuple, list)):
      value = ast.literal_eval(text)
      value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
      if current and any(type(v) is not type(current[0]) for v in value):
        raise ValueError
      return kind(value)
  except (ValueError, SyntaxError):
    pass
  example = {bool: "true", int: "64", float: "0.001", tuple: "256,512", list: "[256,512]"}
  raise UserError(f"--config.{key}={text!r} is not a valid {kind.__name__} "
                  f"(e.g. --config.{key}={example.get(kind, '...')})")


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, str]) -> None:
  """Sets each dotted `key` of `overrides` (raw strings) on `config`, type-checked."""
  for key, text in overrides.items():
    parent, name = config, key
    if "." in key:
      *path, name = key.split(".")
      for part in path:
        if part not in parent or not isinstance(parent[part], ml_collections.ConfigDict):
          raise UserError(f"unknown config key {key!r}: see configs/{config.model}.py (or "
                          f"the config file given to --model)")
        parent = parent[part]
    if name not in parent:
      known = ", ".join(sorted(parent.keys()))
      raise UserError(f"unknown config key {key!r} for model {config.model}: known keys: {known}")
    parent[name] = _parse_like(text, parent[name], key)


def parse_override_args(args: list[str]) -> dict[str, str]:
  """['--config.a=1', '--config.b', '2'] → {'a': '1', 'b': '2'}; UserError on anything else."""
  overrides, i = {}, 0
  while i < len(args):
    arg = args[i]
    if not arg.startswith("--config."):
      raise UserError(f"unrecognised argument {arg!r}: use --model, --workdir or --config.KEY=VALUE")
    body = arg[len("--config."):]
    if "=" in body:
      key, value = body.split("=", 1)
    elif i + 1 < len(args):
      key, value = body, args[i + 1]
      i += 1
    else:
      raise UserError(f"{arg} needs a value: --config.{body}=VALUE")
    overrides[key] = value
    i += 1
  return overrides
