"""The family interface (train/families.py): each declared capability flag matches the method it
promises, the factory names the families, and a class-conditional model needs labels."""

import pytest

from genimg_jax.errors import UserError
from genimg_jax.train import families
from tests.conftest import make_tiny_gan_config, make_tiny_vae_config

CAPABILITIES = {"reconstructs": "reconstruct", "scores_test_split": "evaluate",
                "estimates_likelihood": "log_importance_weights"}


@pytest.mark.parametrize("name", sorted(families.FAMILIES))
def test_capability_flags_match_the_methods(name):
  cls = families.FAMILIES[name]
  for flag, method in CAPABILITIES.items():
    assert getattr(cls, flag) == callable(getattr(cls, method, None)), (name, flag)
  for method in ("check_config", "from_config", "init_state", "train_step", "sample_latents",
                 "grid_latents", "generate"):
    assert callable(getattr(cls, method)), (name, method)
  assert cls.builder in ("gan_networks", "vae_network")


def test_gan_and_vae_declare_what_differs():
  assert not any(getattr(families.FAMILIES["gan"], f) for f in CAPABILITIES)
  assert all(getattr(families.FAMILIES["vae"], f) for f in CAPABILITIES)


def test_unknown_family_and_unlabelled_conditional_model_are_one_line():
  config = make_tiny_gan_config()
  config.family = "flow"
  with pytest.raises(UserError, match="config.family='flow' is not one of: gan, vae"):
    families.family_class(config)
  config = make_tiny_vae_config(conditional=True)
  with pytest.raises(UserError, match="no labels") as error:
    families.build_family(config, (28, 28, 1), num_classes=0)
  assert "\n" not in str(error.value)
