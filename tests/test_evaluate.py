"""evaluate.py in-process on a tiny VAE run folder written here (an initialised state, no
training): the IWAE bound of its checkpoint (L_k above the ELBO, image by image), and every
metric of it with the VAE's test −ELBO and the interpolation grid. The CLI and runs that evaluate as they train:
test_e2e_evaluate.py."""

import math
import os

import jax
import numpy as np
import pytest

from genimg_jax import checkpoint as ckpt
from genimg_jax import evaluate
from genimg_jax.data import load_dataset
from genimg_jax.train import run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_vae_config

IMAGE_SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def vae_state():
  """(config, family, initialised state at step 5) of a tiny VAE."""
  config = make_tiny_vae_config(model="vae", eval_classifier_epochs=0.02)
  family = build_family(config, IMAGE_SHAPE)
  state = jax.jit(lambda key: family.init_state(key, 64, IMAGE_SHAPE))(jax.random.PRNGKey(0))
  return config, family, state.replace(step=state.step + 5)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, vae_state):
  """(run folder with checkpoint 5 of the tiny VAE, family, state, cache folder)."""
  config, family, state = vae_state
  workdir = str(tmp_path_factory.mktemp("vae_run"))
  checkpointer = ckpt.Checkpointer(workdir, keep=1)
  checkpointer.save(5, state, run_config.run_info(config, IMAGE_SHAPE, 64))
  checkpointer.close()
  return workdir, family, state, str(tmp_path_factory.mktemp("cache"))


def test_iwae_bound_is_above_the_elbo_image_by_image(vae_state):
  _, family, state = vae_state
  test = load_dataset("mnist_embedded", "test")
  small = type(test)(**{**test.__dict__, "images": test.images[:12], "labels": test.labels[:12]})
  report = evaluate.iwae(family, state, small, jax.random.PRNGKey(1), num_samples=6, batch=5,
                         chunk=4)
  assert report["iwae_k"] == 6
  assert 0 < report["iwae_nll"] < report["iwae_neg_elbo"]  # −L_6 < −L_1 (Jensen, per image).
  assert report["iwae_bits_per_dim"] == pytest.approx(report["iwae_nll"] / (784 * math.log(2)))


@pytest.mark.slow  # Trains the mnist_embedded feature classifier: ~17 CPU-s.
def test_evaluate_scores_the_checkpoint(vae_run):
  workdir, _, _, cache = vae_run
  record = evaluate.evaluate(workdir, num=40, cache_dir=cache, iwae_k=2, seed=0)
  assert record["step"] == 5 and record["model"] == "vae"
  assert record["dataset"] == "mnist_embedded" and record["space"].startswith("classifier-")
  assert record["fid"] > 0 and 0 <= record["precision"] <= 1 and 0 <= record["recall"] <= 1
  assert record["test_neg_elbo"] == pytest.approx(record["test_recon"] + record["test_kl"],
                                                  rel=1e-5)
  assert record["iwae_nll"] <= record["iwae_neg_elbo"]
  assert os.path.isfile(record["interpolations"])
  assert os.path.basename(record["interpolations"]) == "interpolations_5.png"
  assert all(np.isfinite(v) for v in record.values() if isinstance(v, float))
