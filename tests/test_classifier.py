"""The feature classifier on toy data: it learns, is deterministic, is cached by its settings
(and a cache file of other settings is never taken for it); unlabelled data cannot train it."""

import json
import shutil
import re
import os

import jax
import numpy as np
import pytest

from genimg_jax.errors import UserError
from genimg_jax.evaluation import classifier as classifier_lib
from tests.evaluation_support import SETTINGS, toy_data, toy_splits


def test_classifier_learns_is_deterministic_and_is_cached_by_settings(toy_cache, tmp_path,
                                                                       capsys):
  capsys.readouterr()
  a = classifier_lib.get_classifier("toy", toy_cache, settings=SETTINGS, data=toy_splits())
  assert "training" not in capsys.readouterr().err  # Loaded from the cache, not retrained.
  b = classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS, data=toy_splits())
  assert "training" in capsys.readouterr().err
  assert a.test_accuracy > 0.9 and a.test_accuracy == b.test_accuracy and a.name == b.name
  for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # Same seed, same weights.
  images = toy_data(5, 2)[0].astype(np.float32) / 255.0
  np.testing.assert_array_equal(a(images), b(images))
  assert a(images).shape == (5, classifier_lib.DEFAULT_SETTINGS["features"])
  np.testing.assert_allclose(a.probabilities(images).sum(1), 1.0, rtol=1e-9)
  settings = dict(classifier_lib.DEFAULT_SETTINGS, **SETTINGS)
  path = classifier_lib.cache_path(toy_cache, "toy", settings)
  with np.load(path) as npz:
    assert float(npz["test_accuracy"]) == a.test_accuracy
    assert json.loads(str(npz["settings"]))["epochs"] == 3.0
  other = dict(settings, seed=1)
  assert classifier_lib.cache_path(toy_cache, "toy", other) != path
  with pytest.raises(ValueError):  # A file of other settings is never taken for this one.
    classifier_lib._load(path, other)  # pylint: disable=protected-access


def test_unlabelled_data_cannot_train_the_classifier(tmp_path):
  tr_i, tr_l, te_i, te_l, _ = toy_splits()
  with pytest.raises(UserError, match="no class labels"):
    classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS,
                                  data=(tr_i, tr_l, te_i, te_l, 0))


def test_a_damaged_classifier_cache_is_retrained_and_replaced(toy_cache, tmp_path, capsys):
  settings = dict(classifier_lib.DEFAULT_SETTINGS, **SETTINGS)
  intact = classifier_lib.cache_path(toy_cache, "toy", settings)
  path = classifier_lib.cache_path(str(tmp_path), "toy", settings)
  os.makedirs(os.path.dirname(path))
  shutil.copy(intact, path)
  with open(path, "r+b") as f:
    f.truncate(5000)
  capsys.readouterr()
  retrained = classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS, data=toy_splits())
  err = capsys.readouterr().err
  assert "Traceback" not in err
  said = [line for line in err.splitlines() if not re.match(r"step \d+/\d+ \|", line)]
  assert len(said) == 1 and path in said[0] and "again" in said[0], err  # Progress aside.
  with np.load(path) as new, np.load(intact) as old:  # Replaced: training is deterministic.
    assert sorted(new.files) == sorted(old.files)
    for name in old.files:
      np.testing.assert_array_equal(new[name], old[name], err_msg=name)
  assert retrained.test_accuracy > 0.9
  classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS, data=toy_splits())
  assert capsys.readouterr().err == ""  # Read back from the new file: not trained again.
