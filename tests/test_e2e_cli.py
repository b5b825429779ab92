"""`python train.py` from the repository root: bad input (unknown model or key, a wrong type or
value, an unwritable folder, bad zoo and objective settings) is one line on stderr and a
non-zero exit, never a traceback; a tiny run succeeds and leaves its run folder."""

import json
import os

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.slow

TINY_FLAGS = ["--config.generator_hidden=32,16", "--config.discriminator_hidden=32,16",
              "--config.latent_dim=8", "--config.batch_size=8", "--config.log_every=2",
              "--config.sample_every=4", "--config.checkpoint_every=4",
              "--config.steps_per_dispatch=2", "--config.num_grid_samples=4"]


def _train(*args):
  return run_python(["train.py", *args])


def _assert_one_line_error(result):
  assert result.returncode != 0
  assert "Traceback" not in result.stdout and "Traceback" not in result.stderr
  lines = result.stderr.rstrip("\n").split("\n")
  assert len(lines) == 1 and lines[0].strip(), f"stderr was:\n{result.stderr}"
  return lines[0]


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / "run")


def test_unknown_model(workdir):
  line = _assert_one_line_error(_train("--model", "nope", "--workdir", workdir))
  assert "nope" in line and "gan" in line  # Names the bad value and a valid choice.
  assert not os.path.exists(workdir)


def test_unknown_config_key(workdir):
  line = _assert_one_line_error(_train("--model", "gan", "--workdir", workdir, "--config.nope=1"))
  assert "nope" in line
  assert not os.path.exists(workdir)


def test_wrong_value_type(workdir):
  line = _assert_one_line_error(
      _train("--model", "gan", "--workdir", workdir, "--config.batch_size=abc"))
  assert "batch_size" in line and "abc" in line
  assert not os.path.exists(workdir)


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  workdir = str(blocker / "run")  # Its parent is a regular file: it cannot be created.
  line = _assert_one_line_error(_train("--model", "gan", "--workdir", workdir, *TINY_FLAGS,
                                       "--config.num_steps=4"))
  assert workdir in line


def test_non_positive_num_steps(workdir):
  line = _assert_one_line_error(
      _train("--model", "gan", "--workdir", workdir, "--config.num_steps=0"))
  assert "num_steps" in line


def test_tiny_run_succeeds(workdir):
  # One override in the space-separated form too: --config.KEY VALUE.
  result = _train("--model", "gan", "--workdir", workdir, *TINY_FLAGS, "--config.num_steps", "4")
  assert result.returncode == 0, result.stderr
  assert "Traceback" not in result.stdout + result.stderr
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    config = json.load(f)
  assert config["num_steps"] == 4 and config["generator_hidden"] == [32, 16]
  assert config["model"] == "gan" and config["family"] == "gan"
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    assert [json.loads(line)["step"] for line in f] == [2, 4]
  assert os.path.isfile(os.path.join(workdir, "samples_4.png"))


def test_cli_bad_objective_is_one_line(tmp_path):
  result = run_python(["train.py", "--model", "iwae", "--workdir", str(tmp_path / "a"),
                       "--config.objective=elbow"], timeout=120)
  assert result.returncode != 0 and "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "objective" in lines[0], result.stderr


def _one_line_error(*flags):
  line = _assert_one_line_error(_train(*flags, "--config.num_steps=2"))
  assert line.startswith("error: "), line
  return line


@pytest.mark.parametrize("flags,expected", [
    (("--model", "dcgan", "--config.loss=nope"),
     ("nope", "non_saturating", "minimax", "hinge", "least_squares", "wgan_gp")),
    (("--model", "wgan_gp", "--config.n_critic=0"), ("n_critic", "0")),
    (("--model", "dcgan", "--config.ema_decay=1.5"), ("ema_decay", "1.5")),
    (("--model", "dcgan", "--config.architecture=nope"), ("nope", "dcgan", "mlp",
                                                           "standard_cnn")),
    (("--model", "dcgan32", "--config.image_size=0"), ("28×28×1", "image_size")),
])
def test_bad_zoo_settings_are_one_line(flags, expected, tmp_path):
  line = _one_line_error(*flags, "--workdir", str(tmp_path / "run"))
  for word in expected:
    assert word in line, line
