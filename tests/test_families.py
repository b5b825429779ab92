"""build_family over the zoo that configs/ holds (a new configs/NAME.py joins without a test
edit): `config.family` picks the GAN or VAE family, each architecture's SMALL widths keep its
layers with fewer parameters, and the networks take and make the data's image shape. A
conditional model refuses a set without labels in one line; an unconditional one does not need
them. Traced abstractly (jax.eval_shape): the shapes XLA would compute, without compiling."""

import functools
import jax
import jax.numpy as jnp
import math
import numpy as np
import pytest


from genimg_jax import models
from genimg_jax.config_cli import load_config
from genimg_jax.errors import UserError
from genimg_jax.train import families
from genimg_jax.train.families import FAMILIES, build_family
from tests.conftest import make_tiny_zoo_config, zoo_models
from tests.conftest import make_tiny_gan_config, make_tiny_vae_config


def _image_shape(config):
  """The embedded digits as the run loads them: 28×28×1, or resized to config.image_size."""
  side = config.image_size or 28
  return (side, side, 1)


@functools.lru_cache(maxsize=None)
def _abstract_state(model, small):
  """(config, family, abstract state) of `model` at its real or its SMALL widths."""
  config = make_tiny_zoo_config(model) if small else load_config(model)
  family = build_family(config, _image_shape(config), 10)
  state = jax.eval_shape(lambda k: family.init_state(k, 64, _image_shape(config)),
                         jax.random.PRNGKey(0))
  return config, family, state


def _param_shapes(state):
  """{path: shape} of the trained parameters (GAN: G and D; VAE: the encoder and decoder)."""
  trees = {"g": state.g_params, "d": state.d_params} if hasattr(state, "g_params") else {
      "vae": state.params}
  return {jax.tree_util.keystr(p): x.shape
          for p, x in jax.tree_util.tree_leaves_with_path(trees)}


def test_the_zoo_is_read_from_configs():
  models_found = zoo_models()
  assert {"gan", "vae", "dcgan", "conv_vae"} <= set(models_found)
  assert "common" not in models_found and not any(m.startswith("_") for m in models_found)
  assert sorted(zoo_models("gan") + zoo_models("vae")) == models_found  # Two families, no other.


@pytest.mark.parametrize("model", zoo_models())
def test_every_config_names_a_family_and_an_architecture_with_small_widths(model):
  config = load_config(model)
  assert config.family in FAMILIES, config.family
  assert config.architecture in models.available(), config.architecture
  small = models.load(config.architecture).SMALL
  used = {k: v for k, v in small.items() if k in config}
  assert used, f"{config.architecture}.SMALL sets none of {model}'s keys"
  for key, value in used.items():
    assert type(value) is type(config[key]), (key, value, config[key])


@pytest.mark.parametrize("model", zoo_models())
def test_small_widths_keep_the_layers_with_fewer_parameters(model):
  """SMALL: same layers (parameter paths and ranks) as the real config, fewer channels."""
  full = _param_shapes(_abstract_state(model, small=False)[2])
  small = _param_shapes(_abstract_state(model, small=True)[2])
  assert sorted(small) == sorted(full)
  assert all(len(small[p]) == len(full[p]) for p in full)
  assert sum(math.prod(s) for s in small.values()) < sum(math.prod(s) for s in full.values()) / 4


@pytest.mark.parametrize("model", zoo_models())
def test_every_model_takes_and_makes_the_datas_image_shape(model):
  config, family, state = _abstract_state(model, small=True)
  shape = _image_shape(config)
  n = getattr(family, "batches_per_step", 1)
  lead = (n, config.batch_size) if n > 1 else (config.batch_size,)
  batch = {"image": jax.ShapeDtypeStruct(lead + shape, jnp.uint8),
           "label": jax.ShapeDtypeStruct(lead, jnp.int32)}
  new_state, metrics = jax.eval_shape(family.train_step, state, batch, jax.random.PRNGKey(1))
  assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(state)
  assert metrics and all(m.shape == () for m in metrics.values()), metrics
  latents, _ = family.grid_latents(jax.random.PRNGKey(2), 16)
  images = jax.eval_shape(family.generate, state, latents)
  assert images.shape[1:] == shape and images.dtype == np.float32


def test_conditional_model_on_unlabelled_data_is_one_line():
  with pytest.raises(UserError, match="no labels") as error:
    build_family(load_config("cvae"), (28, 28, 1), num_classes=0)
  assert "\n" not in str(error.value) and "cvae" in str(error.value)


def test_conditional_model_on_an_unlabelled_set_is_refused():
  config = make_tiny_zoo_config("cgan")
  with pytest.raises(UserError, match="no labels"):
    build_family(config, (28, 28, 1), 0)
  build_family(make_tiny_zoo_config("dcgan"), (28, 28, 1), 0)  # Unconditional: no labels needed.


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
