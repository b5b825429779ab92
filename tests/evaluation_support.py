"""Toy data of the evaluation tests (test_classifier.py, test_samples.py): two easy classes, and
a cache folder holding the default classifier trained on them once per session."""

import numpy as np
import pytest

SETTINGS = dict(epochs=3.0)  # The default CNN; 6 steps on the toy data below.


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
  """A cache dir holding the toy data's classifier (trained once per session)."""
  from genimg_jax.evaluation import classifier as classifier_lib

  cache = str(tmp_path_factory.mktemp("toy_cache"))
  classifier_lib.get_classifier("toy", cache, settings=SETTINGS, data=toy_splits())
  return cache
