"""evaluate.py in-process on a tiny VAE run folder written here (an initialised state, no
training): the IWAE bound of its checkpoint (L_k above the ELBO, image by image), and every
metric of it with the VAE's test −ELBO and the interpolation grid. The CLI and runs that evaluate as they train:
test_e2e_evaluate.py."""

import math
import os
import re

import jax
import numpy as np
import pytest

from genimg_jax import checkpoint as ckpt
from configs import common
from genimg_jax import evaluate
from genimg_jax.errors import UserError, flag_names
from genimg_jax.evaluation import classifier as classifier_lib
from genimg_jax.evaluation import features
from genimg_jax.evaluation.inception_weights import load_params
from genimg_jax.data import load_dataset
from genimg_jax.train import run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_vae_config
from tests.evaluation_support import SETTINGS, resolved_config, toy_data, toy_splits

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
  assert record["protocol"] == "clean"  # Every record names its FID protocol.
  assert record["fid"] > 0 and 0 <= record["precision"] <= 1 and 0 <= record["recall"] <= 1
  assert record["test_neg_elbo"] == pytest.approx(record["test_recon"] + record["test_kl"],
                                                  rel=1e-5)
  assert record["iwae_nll"] <= record["iwae_neg_elbo"]
  assert os.path.isfile(record["interpolations"])
  assert os.path.basename(record["interpolations"]) == "interpolations_5.png"
  assert all(np.isfinite(v) for v in record.values() if isinstance(v, float))


class _FakeSpace:
  name = "fake-space"

  def __call__(self, images):
    return images.reshape(len(images), -1)[:, :3]


def _helper_messages(tmp_path) -> list[str]:
  """The one-line messages of the evaluation helpers that tell the user to set a flag."""
  os.makedirs(tmp_path, exist_ok=True)
  messages = []

  def message_of(fn, *args, **kwargs):
    with pytest.raises(UserError) as info:
      fn(*args, **kwargs)
    messages.append(str(info.value))

  message_of(features.get_space, resolved_config(inception_weights=""), "inception")
  message_of(features.get_space, resolved_config(inception_weights=str(tmp_path / "none.pt")),
             "inception")
  message_of(features.get_space, resolved_config(), "pixels")
  not_a_zip = tmp_path / "weights.pt"
  not_a_zip.write_bytes(b"not a zip archive")
  message_of(load_params, str(not_a_zip))
  message_of(load_params, str(tmp_path / "absent.pt"))
  a_file = tmp_path / "a_file"  # A cache dir that cannot be made: writes fail.
  a_file.write_text("")
  message_of(features.reference_features, _FakeSpace(), "toy", toy_data(4)[0], str(a_file))
  message_of(classifier_lib.get_classifier, "toy", str(a_file), settings=dict(epochs=0.5),
             data=toy_splits())
  tr_i, tr_l, te_i, te_l, _ = toy_splits()
  message_of(classifier_lib.get_classifier, "toy", str(tmp_path), settings=SETTINGS,
             data=(tr_i, tr_l, te_i, te_l, 0))
  return messages


def _flags(message: str) -> list[str]:
  """The --flags a message names, leaving out the shell commands it quotes in `backticks`."""
  return re.findall(r"(?<![\w-])--[\w.]+", re.sub(r"`[^`]*`", "", message))


def test_messages_name_flags_of_the_cli_that_runs(tmp_path):
  """Under evaluate, every flag a helper's message names is one evaluate takes; under train.py
  (no CLI names), each is --config.KEY of a key the configs declare."""
  taken = set(evaluate.build_parser()._option_string_actions)  # pylint: disable=protected-access
  with flag_names(evaluate.FLAGS):
    for message in _helper_messages(tmp_path / "evaluate"):
      assert _flags(message) and set(_flags(message)) <= taken, message
  keys = set(common.get_config())
  for message in _helper_messages(tmp_path / "train"):
    named = _flags(message)
    assert named and all(f.startswith("--config.") and f[len("--config."):] in keys
                         for f in named), message
