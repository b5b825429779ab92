"""Toy data of the evaluation tests (test_classifier.py, test_samples.py, ...): two easy classes,
a cache folder holding the default classifier trained on them once per session, and a toy
conditional generator of that data."""

import fcntl
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

SETTINGS = dict(epochs=3.0)  # The default CNN; 6 steps on the toy data below.


def resolved_config(**keys):
  """A resolved config (every key of configs/common.py) of the toy data set, with `keys` set."""
  from configs import common

  config = common.get_config()
  config.update(dict(dict(dataset="toy"), **keys))
  return config


def toy_data(n=256, seed=0):
  """Two easy classes: a bright left half or a bright right half, 12×12 grey, uint8."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, n).astype(np.int32)
  images = rng.integers(0, 60, (n, 12, 12, 1)).astype(np.uint8)
  for i, y in enumerate(labels):
    images[i, :, y * 6:(y + 1) * 6] += 180
  return images, labels


def toy_splits():
  """(train images, train labels, test images, test labels, number of classes)."""
  tr, te = toy_data(256, 0), toy_data(64, 1)
  return (*tr, *te, 2)


@pytest.fixture(scope="session")
def toy_cache(tmp_path_factory):
  """A cache dir holding the toy data's classifier, trained once per test session: pytest-xdist
  workers share it (the first to take the lock trains, the others wait and read it)."""
  from genimg_jax.evaluation import classifier as classifier_lib

  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # This session's folder, above the workers' own.
  cache = root / "toy_cache"
  with open(root / "toy_cache.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (cache / "done").exists():
      classifier_lib.get_classifier("toy", str(cache), settings=SETTINGS, data=toy_splits())
      (cache / "done").touch()
  return str(cache)


class ToyFamily:
  """A conditional 'generator' whose image is its label's half lit (the toy classifier's data)."""

  latent_dim = 3

  def sample_latents(self, key, num):
    z_key, y_key = jax.random.split(key)
    return {"z": jax.random.normal(z_key, (num, 3)),
            "label": jax.random.randint(y_key, (num,), 0, 2)}

  def generate(self, state, latents):
    """Half `label` lit (state = 0) or the other half (state = 1), float [N, 12, 12, 1]."""
    lit = (jnp.arange(12)[None, :] // 6) == (latents["label"][:, None] + state) % 2  # [N, 12]
    img = jnp.broadcast_to(lit[:, None, :, None], (lit.shape[0], 12, 12, 1)).astype(jnp.float32)
    return 0.1 + 0.7 * img + 0.01 * latents["z"][:, :1, None, None]
