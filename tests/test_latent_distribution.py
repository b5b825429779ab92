"""config.latent_distribution: z ~ N(0, I) (the default, drawn bit for bit as before the key
existed) or U(−1, 1) (compare_gan's, the Lucic configs'), followed alike by the training step's
draws, the sample grids, the sampler of generate / evaluate, and a conditional model's z (its
labels drawn as before); a bad value is one line at config check."""

import jax
import numpy as np
import pytest

from genimg_jax import checkpoint as ckpt
from genimg_jax import config_cli, generate
from genimg_jax.errors import UserError
from genimg_jax.evaluation import samples as samples_lib
from genimg_jax.train import run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_gan_config, make_tiny_zoo_config

SHAPE = (28, 28, 1)
N = 20_000  # Draws for the moment checks: U(−1, 1) has mean 0, variance 1/3.


def _family(model="gan", **overrides):
  return build_family(make_tiny_zoo_config(model, **overrides), SHAPE, 10)


def _z(latents):
  return np.asarray(latents["z"] if isinstance(latents, dict) else latents, np.float64)


def _assert_uniform(z):
  assert z.min() >= -1.0 and z.max() < 1.0
  assert abs(z.mean()) < 0.01 and abs(z.var() - 1.0 / 3.0) < 0.01
  assert z.min() < -0.99 and z.max() > 0.99  # Fills the interval, not a narrower one.


@pytest.mark.parametrize("model", ["gan", "cgan"])
def test_uniform_draws_lie_in_the_interval_with_its_moments(model):
  family = _family(model, latent_distribution="uniform")
  key = jax.random.PRNGKey(3)
  drawn = family.sample_latents(key, N // family.latent_dim + 1)  # generate / evaluate.
  grid, _ = family.grid_latents(key, 64)  # Sample grids.
  train = jax.jit(family._train_latents, static_argnums=1)(key, N // family.latent_dim + 1)
  for latents in (drawn, train):
    _assert_uniform(_z(latents))
  assert np.all(np.abs(_z(grid)) <= 1.0)
  if model == "cgan":  # Only the continuous part follows it: labels are the same draw.
    normal = _family(model)
    for uni, nor in ((drawn, normal.sample_latents(key, N // family.latent_dim + 1)),
                     (grid, normal.grid_latents(key, 64)[0])):
      np.testing.assert_array_equal(np.asarray(uni["label"]), np.asarray(nor["label"]))


def test_normal_is_the_default_and_draws_as_before():
  """Without the key set, z is jax.random.normal of the same key, bit for bit, in the three
  places a GAN draws it."""
  family = _family("gan")
  assert make_tiny_gan_config().latent_distribution == "normal"
  key = jax.random.PRNGKey(7)
  z_key = jax.random.split(key)[0]
  want = np.asarray(jax.random.normal(z_key, (5, family.latent_dim)))
  np.testing.assert_array_equal(np.asarray(family.sample_latents(key, 5)), want)
  np.testing.assert_array_equal(np.asarray(family._train_latents(key, 5)), want)
  np.testing.assert_array_equal(np.asarray(family.grid_latents(key, 5)[0]), want)
  conditional = _family("cgan")  # Its grid: one z per grid cell from the key itself.
  grid, _ = conditional.grid_latents(key, 20)
  np.testing.assert_array_equal(np.asarray(grid["z"]), np.asarray(
      jax.random.normal(key, (grid["z"].shape[0], conditional.latent_dim))))


@pytest.mark.slow  # About 2 s: an Orbax save and restore.
def test_generate_follows_the_saved_distribution(tmp_path):
  """A run folder of a uniform-z config: generate's samples are G of U(−1, 1) latents (sample
  i from fold_in(seed's key, i)), not of the normal ones."""
  config = make_tiny_gan_config(model="gan", latent_distribution="uniform")
  family = build_family(config, SHAPE)
  state = jax.jit(lambda key: family.init_state(key, 64, SHAPE))(jax.random.PRNGKey(0))
  checkpointer = ckpt.Checkpointer(str(tmp_path), keep=1)
  checkpointer.save(0, state, run_config.run_info(config, SHAPE, 64))
  checkpointer.close()
  loaded, restored, _ = generate.load_run(str(tmp_path))
  assert loaded.latent_distribution == "uniform"
  samples, _ = samples_lib.draw_seeded(loaded, restored, 4, seed=0, batch_size=4)
  key = jax.random.fold_in(jax.random.PRNGKey(0), samples_lib.SAMPLES_STREAM)
  z_keys = [jax.random.split(jax.random.fold_in(key, i))[0] for i in range(4)]
  uniform = np.concatenate([jax.random.uniform(k, (1, config.latent_dim), minval=-1.0,
                                               maxval=1.0) for k in z_keys])
  normal = np.concatenate([jax.random.normal(k, (1, config.latent_dim)) for k in z_keys])
  images = jax.jit(family.generate)(state, np.concatenate([uniform, normal]))
  np.testing.assert_allclose(samples, images[:4], atol=1e-6)
  assert not np.allclose(samples, images[4:], atol=1e-3)


def test_a_checkpoint_without_the_key_reads_as_normal():
  info = run_config.run_info(make_tiny_gan_config(model="gan"), SHAPE, 64)
  del info["config"]["latent_distribution"]  # Written before the key existed.
  assert generate.saved_config(info).latent_distribution == "normal"
  with_key = run_config.run_info(make_tiny_gan_config(model="gan"), SHAPE, 64)
  assert run_config.fingerprint(info["config"]) == run_config.fingerprint(with_key["config"])


def test_the_lucic_configs_draw_uniform_as_compare_gan():
  for model in ("lucic_ns_gan", "lucic_lsgan", "lucic_wgan_gp"):
    assert config_cli.load_config(model).latent_distribution == "uniform"


def test_a_bad_value_is_one_line():
  with pytest.raises(UserError, match="latent_distribution='cauchy' is not one of") as e:
    run_config.validate(make_tiny_zoo_config("gan", latent_distribution="cauchy"))
  assert "\n" not in str(e.value)
