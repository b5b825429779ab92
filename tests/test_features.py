"""Feature spaces: reference features computed once and cached, the cache folder's defaults, and
the Inception space refusing a missing weights file."""

import os

import numpy as np
import pytest

from genimg_jax.errors import UserError
from genimg_jax.evaluation import features
from tests.evaluation_support import resolved_config, toy_data


def test_reference_features_are_computed_once(tmp_path):
  calls = []

  class Space:
    name = "fake-space"

    def __call__(self, images):
      calls.append(len(images))
      return images.reshape(len(images), -1)[:, :3] * 2.0

  images = toy_data(20)[0]
  first = features.reference_features(Space(), "toy", images, str(tmp_path))
  second = features.reference_features(Space(), "toy", images, str(tmp_path))
  assert calls == [20]
  np.testing.assert_array_equal(first, second)
  np.testing.assert_allclose(first, images.reshape(20, -1)[:, :3] / 255.0 * 2.0, rtol=1e-6)


def test_cache_dir_defaults(monkeypatch, tmp_path):
  monkeypatch.setenv("GENIMG_CACHE_DIR", str(tmp_path))
  assert features.resolve_cache_dir("") == str(tmp_path)
  assert features.resolve_cache_dir("/x") == "/x"
  monkeypatch.delenv("GENIMG_CACHE_DIR")
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  assert features.default_cache_dir() == os.path.expanduser("~/.cache/genimg_jax")


def test_inception_space_needs_a_weights_file(tmp_path):
  config = resolved_config(inception_weights="")
  with pytest.raises(UserError, match="inception_weights"):
    features.get_space(config, "inception")
  config.inception_weights = str(tmp_path / "missing.pt")
  with pytest.raises(UserError, match="not found"):
    features.get_space(config, "inception")
