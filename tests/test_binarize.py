"""data/binarize.py: the static draw is seeded and fixed, the dynamic one redraws per key, both
keep each pixel's mean; config.binarize is validated and leaves old fingerprints alone."""

import json
import os

import jax
import numpy as np
import pytest

from genimg_jax.data import binarize, load_dataset
from genimg_jax.errors import UserError

GREY = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(200, axis=0)


def test_static_is_deterministic_binary_and_seeded():
  a = binarize.static(GREY, 0, "train")
  assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 255}
  np.testing.assert_array_equal(a, binarize.static(GREY, 0, "train"))  # Same seed, same draw.
  assert (a != binarize.static(GREY, 1, "train")).mean() > 0.1  # Another seed, another draw.
  assert (a != binarize.static(GREY, 0, "test")).mean() > 0.1  # Each split its own stream.
  flat = a.reshape(200, 256)
  assert (flat[:, 0] == 0).all() and (flat[:, 255] == 255).all()  # p = 0 and p = 1 exactly.


def test_static_keeps_each_pixels_mean():
  """P(on) = x / 255: over 200 draws of each grey level the frequency is within 4.5 σ."""
  freq = binarize.static(GREY, 3, "train").reshape(200, 256).mean(0) / 255.0
  p = np.arange(256) / 255.0
  sigma = np.sqrt(p * (1 - p) / 200) + 1e-9
  assert np.all(np.abs(freq - p) <= 4.5 * sigma + 1e-12)


def test_dynamic_redraws_per_key_and_is_a_function_of_the_key():
  images = jax.numpy.asarray(GREY)
  a = binarize.dynamic(images, jax.random.PRNGKey(0))
  b = binarize.dynamic(images, jax.random.PRNGKey(1))
  assert a.dtype == np.uint8 and set(np.unique(np.asarray(a))) <= {0, 255}
  np.testing.assert_array_equal(a, binarize.dynamic(images, jax.random.PRNGKey(0)))
  assert (np.asarray(a) != np.asarray(b)).mean() > 0.1
  jitted = jax.jit(binarize.dynamic)(images, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(a, jitted)
  freq = np.asarray(a).reshape(200, 256).mean(0) / 255.0
  p = np.arange(256) / 255.0
  assert np.all(np.abs(freq - p) <= 4.5 * np.sqrt(p * (1 - p) / 200) + 1e-9)


def test_for_split_modes():
  assert binarize.for_split(GREY, "none", 0, "train") is GREY
  assert binarize.for_split(GREY, "dynamic", 0, "train") is GREY  # Drawn per batch instead.
  np.testing.assert_array_equal(binarize.for_split(GREY, "dynamic", 0, "test"),
                                binarize.static(GREY, 0, "test"))
  with pytest.raises(ValueError, match="none, static, dynamic"):
    binarize.for_split(GREY, "sometimes", 0, "train")


def test_load_dataset_binarises_the_embedded_split_statically():
  grey = load_dataset("mnist_embedded", "test")
  binary = load_dataset("mnist_embedded", "test", binarize="static", seed=5)
  np.testing.assert_array_equal(binary.images, binarize.static(grey.images, 5, "test"))
  np.testing.assert_array_equal(binary.labels, grey.labels)
  with pytest.raises(UserError, match="unknown binarisation"):
    load_dataset("mnist_embedded", "test", binarize="yes")


def test_config_binarize_is_validated(tiny_gan_config):
  from genimg_jax.train import run_config

  for mode in ("none", "static", "dynamic"):
    tiny_gan_config.binarize = mode
    run_config.validate(tiny_gan_config)
  tiny_gan_config.binarize = "on"
  with pytest.raises(UserError, match="binarize"):
    run_config.validate(tiny_gan_config)


def test_every_shipped_configs_fingerprint_is_unchanged_by_the_binarize_key():
  """Fingerprints of the configs shipped before `binarize` existed, recorded then: the key at
  its neutral value is left out, so their checkpoints still resume."""
  from genimg_jax import config_cli
  from genimg_jax.train import run_config

  path = os.path.join(os.path.dirname(__file__), "reference", "config_fingerprints.json")
  with open(path, encoding="utf-8") as f:
    recorded = json.load(f)
  for model, fingerprint in recorded.items():
    config = json.loads(config_cli.load_config(model).to_json())
    assert config["binarize"] == "none"
    assert run_config.fingerprint(config) == fingerprint, model
    config["binarize"] = "static"  # A non-neutral value is part of what a run computes.
    assert run_config.fingerprint(config) != fingerprint, model
