"""The convolutional VAE networks: parameter and output shapes at three image sizes (against the
layer plan in configs/conv_vae.py), and the shapes it refuses."""

import jax
import jax.numpy as jnp
import pytest

from genimg_jax.config_cli import load_config
from genimg_jax.errors import UserError
from genimg_jax.models import conv_vae
from genimg_jax.train.families import build_family


def test_conv_vae_layers_and_shapes():
  """Parameter and output shapes at three image sizes, traced abstractly (jax.eval_shape: the
  shapes XLA would compute, without compiling three conv networks)."""
  for shape in ((28, 28, 1), (32, 32, 3), (64, 64, 3)):
    family = build_family(load_config("conv_vae"), shape)
    state = jax.eval_shape(lambda k: family.init_state(k, 16, shape), jax.random.PRNGKey(0))
    params = state.params["params"]
    enc, dec = params["encoder"], params["decoder"]
    h4, w4 = shape[0] // 4, shape[1] // 4
    assert enc["Conv_0"]["kernel"].shape == (4, 4, shape[2], 32)
    assert enc["Conv_1"]["kernel"].shape == (4, 4, 32, 64)
    assert enc["Dense_0"]["kernel"].shape == (h4 * w4 * 64, 256)
    assert enc["mean"]["kernel"].shape == enc["logvar"]["kernel"].shape == (256, 32)
    assert dec["Dense_0"]["kernel"].shape == (32, 256)
    assert dec["Dense_1"]["kernel"].shape == (256, h4 * w4 * 64)
    assert dec["ConvTranspose_0"]["kernel"].shape == (4, 4, 64, 32)
    assert dec["ConvTranspose_1"]["kernel"].shape == (4, 4, 32, shape[2])
    images = jax.ShapeDtypeStruct((2, *shape), jnp.uint8)
    assert jax.eval_shape(family.reconstruct, state, images).shape == (2, *shape)
    assert jax.eval_shape(lambda s, x: family.log_importance_weights(
        s, x, None, jax.random.PRNGKey(0), 3), state, images).shape == (3, 2)


def test_conv_vae_rejects_shapes_it_cannot_take():
  with pytest.raises(ValueError, match="multiples of 4"):
    conv_vae.vae_network(load_config("conv_vae"), (30, 28, 1))
  with pytest.raises(UserError, match="image_size") as error:
    build_family(load_config("conv_vae"), (30, 30, 3))
  assert "\n" not in str(error.value) and "30x30x3" in str(error.value)
  conv_vae.check_image_shape((32, 32, 3), (8, 8, 8))  # 3 halvings: 32 is fine ...
  with pytest.raises(ValueError, match="multiples of 8"):
    conv_vae.check_image_shape((28, 28, 1), (8, 8, 8))  # ... 28 is not.
