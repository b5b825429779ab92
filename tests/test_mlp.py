"""The seed MLPs (models/mlp.py as configs/gan_seed.py, gan.py and vae.py build them): exact layer
shapes and sizes, activations, output ranges, dropout — checked against numpy forward passes and
hand counts."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import gan as gan_config
from configs import gan_seed as gan_seed_config
from configs import vae as vae_config
from genimg_jax.models import mlp
from genimg_jax.train.gan_step import GAN
from genimg_jax.train.vae_step import VAE

IMAGE_SHAPE = (28, 28, 1)


def _dense_params(a, b):
  return a * b + b


def _count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(tree))


def _dense_layers(params):
  """[(kernel shape, bias shape)] of Dense_0, Dense_1, … in layer order."""
  layers = params["params"]
  names = sorted(layers, key=lambda n: int(n.split("_")[1]))
  assert names == [f"Dense_{i}" for i in range(len(names))]
  return [(layers[n]["kernel"].shape, layers[n]["bias"].shape) for n in names]


def _init(family, seed):
  return jax.jit(lambda key: family.init_state(key, 16, IMAGE_SHAPE))(jax.random.PRNGKey(seed))


@pytest.fixture(scope="module")
def seed_gan():
  family = GAN.from_config(gan_seed_config.get_config(), IMAGE_SHAPE)
  return family, _init(family, 0)


@pytest.fixture(scope="module")
def default_gan():
  family = GAN.from_config(gan_config.get_config(), IMAGE_SHAPE)
  return family, _init(family, 1)


@pytest.fixture(scope="module")
def seed_vae():
  family = VAE.from_config(vae_config.get_config(), IMAGE_SHAPE)
  return family, _init(family, 2)


def _np_mlp(params, x, hidden_act, out_act):
  """Plain numpy forward pass of a Dense stack: hidden_act after all but the last layer."""
  layers = params["params"]
  n = len(layers)
  x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
  for i in range(n):
    x = x @ np.asarray(layers[f"Dense_{i}"]["kernel"], np.float64) + np.asarray(
        layers[f"Dense_{i}"]["bias"], np.float64)
    x = hidden_act(x) if i < n - 1 else out_act(x)
  return x


np_relu = lambda x: np.maximum(x, 0.0)
np_leaky = lambda x: np.where(x > 0, x, 0.2 * x)
np_sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
np_identity = lambda x: x


# ----------------------------------------------------------------------------- shapes & sizes


def test_seed_generator_shapes_and_count(seed_gan):
  _, state = seed_gan
  assert _dense_layers(state.g_params) == [((100, 256), (256,)), ((256, 512), (512,)),
                                           ((512, 1024), (1024,)), ((1024, 784), (784,))]
  expected = (_dense_params(100, 256) + _dense_params(256, 512) + _dense_params(512, 1024)
              + _dense_params(1024, 784))
  assert expected == 1_486_352  # 25,856 + 131,584 + 525,312 + 803,600.
  assert _count(state.g_params) == expected


def test_seed_discriminator_shapes_and_count(seed_gan):
  _, state = seed_gan
  assert _dense_layers(state.d_params) == [((784, 1024), (1024,)), ((1024, 512), (512,)),
                                           ((512, 256), (256,)), ((256, 1), (1,))]
  expected = (_dense_params(784, 1024) + _dense_params(1024, 512) + _dense_params(512, 256)
              + _dense_params(256, 1))
  assert expected == 1_460_225  # 803,840 + 524,800 + 131,328 + 257.
  assert _count(state.d_params) == expected


def test_default_gan_keeps_seed_sizes(seed_gan, default_gan):
  shapes = lambda tree: jax.tree_util.tree_map(lambda x: x.shape, tree)
  assert shapes(default_gan[1].g_params) == shapes(seed_gan[1].g_params)
  assert shapes(default_gan[1].d_params) == shapes(seed_gan[1].d_params)


def test_seed_vae_shapes_and_count(seed_vae):
  _, state = seed_vae
  params = state.params["params"]
  enc, dec = params["encoder"], params["decoder"]
  assert set(enc) == {"Dense_0", "mean", "logvar"}
  assert enc["Dense_0"]["kernel"].shape == (784, 128)
  assert enc["mean"]["kernel"].shape == (128, 32) and enc["mean"]["bias"].shape == (32,)
  assert enc["logvar"]["kernel"].shape == (128, 32) and enc["logvar"]["bias"].shape == (32,)
  assert _dense_layers({"params": dec}) == [((32, 128), (128,)), ((128, 784), (784,))]
  assert _count(enc) == _dense_params(784, 128) + 2 * _dense_params(128, 32) == 108_736
  assert _count(dec) == _dense_params(32, 128) + _dense_params(128, 784) == 105_360


def test_seed_optimiser_settings():
  for config in (gan_seed_config.get_config(), gan_config.get_config()):
    assert (config.learning_rate, config.adam_b1, config.latent_dim) == (2e-4, 0.5, 100)
  config = vae_config.get_config()
  assert (config.learning_rate, config.latent_dim) == (1e-3, 32)


# ----------------------------------------------------------------------------- activations


def test_get_activation_numerics():
  x = jnp.array([-2.0, -0.5, 0.0, 1.5])
  np.testing.assert_allclose(mlp.get_activation("leaky_relu", 0.2)(x), [-0.4, -0.1, 0.0, 1.5],
                             rtol=1e-6)
  np.testing.assert_allclose(mlp.get_activation("leaky_relu", 0.1)(x), [-0.2, -0.05, 0.0, 1.5],
                             rtol=1e-6)
  np.testing.assert_allclose(mlp.get_activation("relu")(x), [0.0, 0.0, 0.0, 1.5])
  np.testing.assert_allclose(mlp.get_activation("tanh")(x), np.tanh([-2.0, -0.5, 0.0, 1.5]),
                             rtol=1e-6)
  np.testing.assert_allclose(mlp.get_activation("sigmoid")(x), np_sigmoid(np.array(x)), rtol=1e-6)
  with pytest.raises(ValueError):
    mlp.get_activation("swish")


def test_configured_activations():
  seed, default = gan_seed_config.get_config(), gan_config.get_config()
  assert (seed.activation, seed.output_activation, seed.discriminator_dropout) == (
      "relu", "sigmoid", 0.0)
  assert (default.activation, default.leaky_relu_slope, default.output_activation,
          default.discriminator_dropout) == ("leaky_relu", 0.2, "tanh", 0.3)
  neg = jnp.array([-1.0])
  seed_family = GAN.from_config(seed, IMAGE_SHAPE)
  default_family = GAN.from_config(default, IMAGE_SHAPE)
  for module in (seed_family.generator, seed_family.discriminator):
    np.testing.assert_allclose(module.activation(neg), [0.0])
  for module in (default_family.generator, default_family.discriminator):
    np.testing.assert_allclose(module.activation(neg), [-0.2], rtol=1e-6)
  assert seed_family.discriminator.dropout_rate == 0.0
  assert default_family.discriminator.dropout_rate == pytest.approx(0.3)


def test_seed_gan_matches_numpy_forward(seed_gan):
  family, state = seed_gan
  z = jax.random.normal(jax.random.PRNGKey(3), (4, 100))
  images = family.generator.apply(state.g_params, z)
  assert images.shape == (4, 28, 28, 1)
  expected = _np_mlp(state.g_params, np.asarray(z), np_relu, np_sigmoid)
  np.testing.assert_allclose(np.asarray(images).reshape(4, -1), expected, rtol=2e-4, atol=2e-5)
  x = jax.random.uniform(jax.random.PRNGKey(4), (4, 28, 28, 1))
  logits = family.discriminator.apply(state.d_params, x, train=False)
  assert logits.shape == (4,)
  expected = _np_mlp(state.d_params, np.asarray(x), np_relu, np_identity)[:, 0]
  np.testing.assert_allclose(logits, expected, rtol=2e-4, atol=2e-5)
  # No dropout in the seed: train=True is the same function (no 'dropout' rng needed).
  np.testing.assert_array_equal(family.discriminator.apply(state.d_params, x, train=True), logits)


def test_default_gan_matches_numpy_forward(default_gan):
  family, state = default_gan
  z = jax.random.normal(jax.random.PRNGKey(5), (4, 100))
  images = family.generator.apply(state.g_params, z)
  expected = _np_mlp(state.g_params, np.asarray(z), np_leaky, np.tanh)
  np.testing.assert_allclose(np.asarray(images).reshape(4, -1), expected, rtol=2e-4, atol=2e-5)
  x = jax.random.uniform(jax.random.PRNGKey(6), (4, 28, 28, 1), minval=-1.0, maxval=1.0)
  logits = family.discriminator.apply(state.d_params, x, train=False)
  expected = _np_mlp(state.d_params, np.asarray(x), np_leaky, np_identity)[:, 0]
  np.testing.assert_allclose(logits, expected, rtol=2e-4, atol=2e-5)


def test_generator_output_ranges(seed_gan, default_gan):
  z = 5.0 * jax.random.normal(jax.random.PRNGKey(7), (64, 100))  # Large z: pushes saturation.
  seed_out = np.asarray(seed_gan[0].generator.apply(seed_gan[1].g_params, z))
  assert seed_out.min() >= 0.0 and seed_out.max() <= 1.0
  default_out = np.asarray(default_gan[0].generator.apply(default_gan[1].g_params, z))
  assert default_out.min() >= -1.0 and default_out.max() <= 1.0
  assert default_out.min() < 0.0 < default_out.max()  # tanh, not sigmoid.
  assert seed_gan[0].data_range == (0.0, 1.0) and default_gan[0].data_range == (-1.0, 1.0)


def test_dropout_only_when_training(default_gan):
  family, state = default_gan
  x = jax.random.uniform(jax.random.PRNGKey(8), (8, 28, 28, 1), minval=-1.0, maxval=1.0)
  jitted = jax.jit(family.discriminator.apply, static_argnames="train")
  apply = lambda train, seed: jitted(state.d_params, x, train=train,
                                     rngs={"dropout": jax.random.PRNGKey(seed)})
  assert not np.allclose(apply(True, 0), apply(True, 1))
  np.testing.assert_array_equal(apply(True, 0), apply(True, 0))
  np.testing.assert_array_equal(apply(False, 0), apply(False, 1))
  assert not np.allclose(apply(True, 0), apply(False, 0))


def test_dropout_rate_is_point_three():
  """Dropout 0.3 after each hidden layer: about 30% of hidden units are zeroed in training."""
  disc = mlp.Discriminator(hidden=(4000,), activation=lambda h: h, dropout_rate=0.3)
  x = jnp.ones((1, 2, 2, 1))
  params = disc.init(jax.random.PRNGKey(0), x, train=False)
  captured = {}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if isinstance(context.module, nn.Dropout):
      captured["in"], captured["out"] = args[0], out
    return out

  with nn.intercept_methods(interceptor):
    disc.apply(params, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
  h_in, h_out = np.asarray(captured["in"]), np.asarray(captured["out"])
  kept = h_out != 0
  assert abs(1.0 - kept.mean() - 0.3) < 0.03
  np.testing.assert_allclose(h_out[kept], h_in[kept] / 0.7, rtol=1e-5)  # Inverted dropout.
