"""run_config: every shipped config is valid; each invalid setting is a one-line UserError naming
the key (and the choices); a checkpoint of other model settings or of another family is refused
in one line naming the difference, while schedule keys may change on resume."""

import pytest

from genimg_jax.config_cli import load_config
from genimg_jax.errors import UserError
from genimg_jax.train import run_config
from tests.conftest import zoo_models


@pytest.mark.parametrize("model,overrides,match", [
    ("iwae", {"objective": "elbow"}, "objective"),
    ("iwae", {"num_importance_samples": 0}, "num_importance_samples"),
    ("iwae", {"num_importance_samples": -3}, "num_importance_samples"),
    ("iwae", {"beta": 4.0}, "beta"),
    ("conv_vae", {"conv_channels": ()}, "conv_channels"),  # The conv architecture's own check.
    ("vae", {"lr_schedule": "cosine"}, "lr_schedule"),  # A declared schedule must be known.
    ("gan", {"image_size": -2}, r"config\.image_size must be zero or a positive integer, got -2"),
    ("gan", {"process_id": -5}, "process_id"),
])
def test_bad_settings_are_one_line(model, overrides, match):
  config = load_config(model)
  config.update(overrides)
  with pytest.raises(UserError, match=match) as error:
    run_config.validate(config)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("model,architecture,says", [
    ("vae", "dcgan", "has no VAE networks"),  # The family's builder is looked for first.
    ("gan", "conv_vae", "has no GAN networks"),
    ("dcgan", "mlp", "reads config.activation, which model 'dcgan' does not declare"),
])
def test_an_architecture_of_another_family_or_model_is_one_line(model, architecture, says):
  config = load_config(model)
  config.architecture = architecture
  with pytest.raises(UserError, match=says) as error:
    run_config.validate(config)
  assert "\n" not in str(error.value)


@pytest.mark.parametrize("model", zoo_models())
def test_every_shipped_config_is_valid(model):
  run_config.validate(load_config(model))


@pytest.mark.parametrize("model,key,value,expected", [
    ("dcgan", "loss", "nope", ("nope", "non_saturating", "minimax", "hinge", "least_squares",
                               "wgan_gp")),
    ("wgan_gp", "n_critic", 0, ("n_critic", "0")),
    ("dcgan", "ema_decay", 1.5, ("ema_decay", "1.5")),
    ("dcgan", "architecture", "nope", ("nope", "dcgan", "mlp", "standard_cnn")),
    ("gan", "discriminator_hidden", (64, 0), ("discriminator_hidden", "(64, 0)")),
    ("vae", "activation", "swish", ("activation", "swish")),
])
def test_bad_zoo_settings_are_one_line_naming_the_key_and_the_choices(model, key, value,
                                                                       expected):
  config = load_config(model)
  config[key] = value
  with pytest.raises(UserError) as error:
    run_config.validate(config)
  line = str(error.value)
  assert "\n" not in line
  for word in expected:
    assert word in line, line


def _saved(config):
  return run_config.run_info(config, (28, 28, 1), 100)


def test_resume_accepts_schedule_changes_and_names_changed_model_settings():
  config = load_config("gan")
  saved = _saved(config)
  config.num_steps, config.log_every, config.keep_checkpoints = 99, 7, 9  # How long, how often.
  run_config.check_resumable(config, saved, 10)
  config.latent_dim = 16
  with pytest.raises(UserError) as error:
    run_config.check_resumable(config, saved, 10)
  line = str(error.value)
  assert "step 10" in line and "latent_dim=16 here but 100 in the checkpoint" in line, line
  # Under a decaying schedule num_steps changes the learning rates: it is a model setting.
  decaying = load_config("gan")
  decaying.lr_schedule = "linear"
  saved = _saved(decaying)
  decaying.num_steps = 123
  with pytest.raises(UserError, match="num_steps=123 here"):
    run_config.check_resumable(decaying, saved, 10)


def test_resume_of_another_familys_checkpoint_names_its_model():
  saved = _saved(load_config("vae"))
  with pytest.raises(UserError) as error:
    run_config.check_resumable(load_config("gan"), saved, 10)
  assert "from a vae run" in str(error.value) and "--model vae" in str(error.value)
