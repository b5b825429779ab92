"""config_cli: the models are the files of configs/ (not common.py, not "_" bases), a config is
loaded by name with its name recorded, and `--config.KEY=VALUE` overrides are parsed against the
type of the value they replace, a typo or a wrong type being one line."""

import os

import ml_collections
import pytest

from genimg_jax import config_cli
from genimg_jax.errors import UserError


def test_available_models_are_the_config_files(tmp_path):
  for name in ("common.py", "_base.py", "alpha.py", "beta.py", "notes.txt"):
    (tmp_path / name).write_text("")
  (tmp_path / "sub").mkdir()
  assert config_cli.available_models(str(tmp_path)) == ["alpha", "beta"]
  shipped = config_cli.available_models()
  files = sorted(f[:-3] for f in os.listdir(config_cli.CONFIGS_DIR) if f.endswith(".py"))
  assert shipped == [f for f in files if f != "common" and not f.startswith("_")]


def test_load_config_records_the_model_and_names_the_choices(tmp_path):
  (tmp_path / "tiny.py").write_text(
      "import ml_collections\n\ndef get_config():\n"
      "  return ml_collections.ConfigDict({'model': '', 'width': 3})\n")
  config = config_cli.load_config("tiny", str(tmp_path))
  assert config.model == "tiny" and config.width == 3
  with pytest.raises(UserError) as error:
    config_cli.load_config("nope", str(tmp_path))
  line = str(error.value)
  assert "'nope'" in line and "tiny" in line and "\n" not in line


def test_override_arguments_in_both_forms():
  assert config_cli.parse_override_args(["--config.a=1", "--config.b", "2", "--config.c=x=y"]) \
      == {"a": "1", "b": "2", "c": "x=y"}
  with pytest.raises(UserError, match="unrecognised argument '--lr=1'"):
    config_cli.parse_override_args(["--lr=1"])
  with pytest.raises(UserError, match="--config.a needs a value"):
    config_cli.parse_override_args(["--config.a"])


def _config():
  return ml_collections.ConfigDict({
      "model": "toy", "steps": 10, "rate": 0.5, "flag": False, "name": "x",
      "widths": (256, 512), "inner": {"depth": 2}})


def test_overrides_take_the_type_of_the_value_they_replace():
  config = _config()
  config_cli.apply_overrides(config, {"steps": "20", "rate": "1e-3", "flag": "True",
                                      "name": "y", "widths": "32,16", "inner.depth": "5"})
  assert config.steps == 20 and type(config.steps) is int
  assert config.rate == 1e-3 and type(config.rate) is float
  assert config.flag is True and config.name == "y"
  assert config.widths == (32, 16) and config.inner.depth == 5
  config_cli.apply_overrides(config, {"widths": "(8,)", "flag": "0", "rate": "2"})
  assert config.widths == (8,) and config.flag is False and config.rate == 2.0


@pytest.mark.parametrize("key,text,expected", [
    ("steps", "abc", ("--config.steps='abc'", "int", "--config.steps=64")),
    ("steps", "2.5", ("int",)),
    ("flag", "maybe", ("bool", "true")),
    ("widths", "32,x", ("tuple",)),
    ("widths", "32,1.5", ("tuple",)),  # Mixed element types.
    ("nope", "1", ("unknown config key 'nope'", "model toy", "steps")),
    ("inner.nope", "1", ("unknown config key 'inner.nope'",)),
    ("steps.x", "1", ("unknown config key 'steps.x'", "configs/toy.py")),
])
def test_bad_overrides_are_one_line(key, text, expected):
  config = _config()
  with pytest.raises(UserError) as error:
    config_cli.apply_overrides(config, {key: text})
  line = str(error.value)
  assert "\n" not in line
  for part in expected:
    assert part in line, line
  assert config.to_dict() == _config().to_dict()  # Nothing set on the way to the error.


def test_a_config_path_without_get_config_or_missing_is_one_line(tmp_path):
  empty = tmp_path / "empty.py"
  empty.write_text("x = 1\n")
  with pytest.raises(UserError, match="defines no get_config"):
    config_cli.load_config(str(empty))
  with pytest.raises(UserError, match="does not exist"):
    config_cli.load_config(str(tmp_path / "absent.py"))
