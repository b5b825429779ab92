"""config.init: each scheme's draws follow its closed form (and PyTorch's own layers when torch
is installed), every architecture's layers follow the scheme, and "flax" leaves parameters
bit-identical to Flax's defaults."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax import models
from genimg_jax.errors import UserError
from genimg_jax.models import initializers as inits
from genimg_jax.train import run_config
from tests.conftest import make_tiny_zoo_config

IMAGE_SHAPE = (28, 28, 1)


def _layers(tree, path=()):
  """[(path, {"kernel": …, "bias": …?})] of every layer with a kernel in a parameter tree."""
  if "kernel" in tree:
    return [(path, tree)]
  return [item for name, sub in tree.items() if isinstance(sub, dict)
          for item in _layers(sub, path + (name,))]


def _params(model: str, **overrides) -> dict:
  """Fresh parameters of configs/<model>.py at its architecture's SMALL widths: the VAE's, or
  {"generator": …, "discriminator": …}."""
  config = make_tiny_zoo_config(model, **overrides)
  num_classes = 10 if config.conditional else 0
  labels = jnp.zeros((1,), jnp.int32) if num_classes else None
  images = jnp.zeros((1, *IMAGE_SHAPE))
  key = jax.random.PRNGKey(0)
  if config.family == "vae":
    network = models.builder(config.architecture, "vae_network")(config, IMAGE_SHAPE, num_classes)
    return network.init(key, images, labels)["params"]
  generator, discriminator = models.builder(config.architecture, "gan_networks")(
      config, IMAGE_SHAPE, num_classes)
  z = jnp.zeros((1, config.latent_dim))
  return {"generator": generator.init(key, z, labels, train=False)["params"],
          "discriminator": discriminator.init(key, images, labels, train=False)["params"]}


@pytest.mark.parametrize("model", ["vae", "vae_pythae", "gan"])
def test_mlp_under_torch_init_draws_within_one_over_root_fan_in(model):
  """Every Dense kernel and bias of the MLPs lies in ±1/√fan_in (fan_in: the kernel's rows)
  and reaches close to it: a kernel of n draws misses the top 1% of the range with odds 0.99^n."""
  layers = _layers(_params(model, init="torch"))
  assert len(layers) >= 4
  for path, layer in layers:
    fan_in, fan_out = layer["kernel"].shape
    bound = 1 / np.sqrt(fan_in)
    for name in ("kernel", "bias"):
      values = np.abs(np.asarray(layer[name]))
      assert values.max() <= bound, (path, name)
      if values.size >= 1000:
        assert values.max() >= 0.99 * bound, (path, name)
    assert np.abs(np.asarray(layer["bias"])).max() > 0, path  # Not Flax's zero biases.


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_mlp_flax_init_is_flax_defaults(monkeypatch, model):
  """init="flax" gives the parameters of plain nn.Dense layers (Flax's own defaults)."""
  ours = _params(model, init="flax")
  monkeypatch.setattr(inits, "dense_kwargs", lambda scheme, fan_in: {})
  theirs = _params(model, init="flax")
  jax.tree_util.tree_map(np.testing.assert_array_equal, ours, theirs)


def test_unknown_init_is_one_line():
  with pytest.raises(UserError, match=r"^config\.init='kaiming' is not one of: flax, torch") as e:
    run_config.validate(make_tiny_zoo_config("vae", init="kaiming"))
  assert "\n" not in str(e.value)
