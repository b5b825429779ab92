"""generate.py in-process on a run folder whose checkpoints are written here (two states of known
parameters): `load_run` restores the step asked for, the latest or refuses in one line, and
the seeded sampler draws float32 samples in [0, 1] from that state. The CLI:
test_e2e_generate.py."""

import jax
import numpy as np
import pytest

from genimg_jax import checkpoint as ckpt
from genimg_jax import generate
from genimg_jax.errors import UserError
from genimg_jax.evaluation import samples as samples_lib
from genimg_jax.train import run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_gan_config

IMAGE_SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
  """A tiny GAN's folder with checkpoints 6 and 12 of two differently seeded states."""
  workdir = str(tmp_path_factory.mktemp("run"))
  config = make_tiny_gan_config(model="gan")
  family = build_family(config, IMAGE_SHAPE)
  init = jax.jit(lambda key: family.init_state(key, 64, IMAGE_SHAPE))
  states = {6: init(jax.random.PRNGKey(6)), 12: init(jax.random.PRNGKey(12))}
  checkpointer = ckpt.Checkpointer(workdir, keep=3)
  for step, state in states.items():
    checkpointer.save(step, state.replace(step=state.step + step),
                      run_config.run_info(config, IMAGE_SHAPE, 64))
  checkpointer.close()
  return workdir, family, states


def test_load_run_restores_the_step_asked_for_or_the_latest(run_folder):
  workdir, _, states = run_folder
  for asked, expected in ((6, 6), (12, 12), (None, 12)):
    _, state, step = generate.load_run(workdir, asked)
    assert step == expected and int(state.step) == expected
    for got, want in zip(jax.tree_util.tree_leaves(state.g_params),
                         jax.tree_util.tree_leaves(states[expected].g_params)):
      np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_generate_draws_samples_in_the_unit_range_from_that_state(run_folder):
  workdir, family, states = run_folder
  loaded, state, _ = generate.load_run(workdir, 6)
  draw = lambda state, seed: samples_lib.draw_seeded(loaded, state, 10, seed, batch_size=4)[0]
  samples = draw(state, 0)  # 3 batches of 4, cut to 10.
  assert samples.shape == (10, 28, 28, 1) and samples.dtype == np.float32
  assert samples.min() >= 0.0 and samples.max() <= 1.0 and np.all(np.isfinite(samples))
  assert not np.allclose(samples[0], samples[1])  # Different latents, different images.
  # Sample i, drawn independently: its own latent from fold_in(seed's key, i).
  key = jax.random.fold_in(jax.random.PRNGKey(0), samples_lib.SAMPLES_STREAM)
  for i in (0, 5, 9):
    latent = family.sample_latents(jax.random.fold_in(key, i), 1)
    np.testing.assert_allclose(samples[i], family.generate(states[6], latent)[0], atol=1e-6)
  assert not np.allclose(samples, draw(state, 1))  # Another seed.
  _, latest, _ = generate.load_run(workdir)
  assert not np.allclose(samples, draw(latest, 0))  # Step 12.


def test_missing_step_or_run_folder_is_one_line(run_folder, tmp_path):
  workdir, _, _ = run_folder
  with pytest.raises(UserError) as error:
    generate.load_run(workdir, 7)
  assert "7" in str(error.value) and "12" in str(error.value) and "\n" not in str(error.value)
  with pytest.raises(UserError, match="no_such_run"):
    generate.load_run(str(tmp_path / "no_such_run"))
  assert generate.parse_step("best") == "best" and generate.parse_step("6") == 6
  assert generate.parse_step(None) is None
  with pytest.raises(UserError, match="--step"):
    generate.parse_step("six")
