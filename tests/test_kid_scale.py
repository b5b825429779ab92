"""KID's feature scale in the classifier space: the standardisation's closed form and its
invariances, and the cached classifier storing it (a file without it is completed, never
misread)."""

import os
import shutil

import numpy as np

from genimg_jax.evaluation import classifier as classifier_lib
from genimg_jax.evaluation import kid as kid_lib
from tests.evaluation_support import SETTINGS, toy_splits


def _features(n, d=6, seed=0, shift=0.0):
  rng = np.random.default_rng(seed)
  return np.maximum(rng.normal(shift, 1.0, (n, d)) * np.arange(1, d + 1) * 3.0, 0.0)


def test_standardisation_closed_form_and_a_constant_dimension():
  f = _features(500)
  f[:, 0] = 7.0  # A constant (dead) unit.
  mean, scale = kid_lib.standardisation(f)
  np.testing.assert_allclose(mean, f.mean(0))
  assert scale == np.sqrt(np.mean(f.var(0)))
  z = kid_lib.standardise(f, mean, scale)
  np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
  np.testing.assert_allclose(np.mean(z.var(0)), 1.0)  # E‖z‖²/D = 1 on the reference set.
  np.testing.assert_allclose(z[:, 0], 0.0)  # Constant stays constant, nothing divided by 0.
  assert kid_lib.standardise(f, None, 1.0) is f


def test_kid_of_standardised_features_is_invariant_to_scale_rotation_and_shift():
  """Recomputed from the transformed reference set, z is unchanged up to a rotation Q, which
  the kernel's inner products do not see: KID(a·fQ + b) = KID(f), for every subset."""
  train, real, fake = _features(400, seed=1), _features(300, seed=2), _features(300, seed=3, shift=0.5)
  q, _ = np.linalg.qr(np.random.default_rng(4).normal(size=(6, 6)))
  a, b = 37.0, np.arange(6) * 5.0 - 2.0
  move = lambda f: a * f @ q + b

  def kid_of(train, real, fake):
    mean, scale = kid_lib.standardisation(train)
    return kid_lib.kid(kid_lib.standardise(real, mean, scale),
                       kid_lib.standardise(fake, mean, scale), 10, 200)

  ours, moved = kid_of(train, real, fake), kid_of(move(train), move(real), move(fake))
  np.testing.assert_allclose(moved, ours, rtol=1e-9)
  raw = kid_lib.kid(move(real), move(fake), 10, 200)[0]
  assert abs(raw) > 1e3 * abs(ours[0])  # Raw features at this scale: KID blown up.


def test_the_classifier_cache_stores_the_scale_and_a_file_without_it_is_completed(
    toy_cache, tmp_path, capsys):
  settings = dict(classifier_lib.DEFAULT_SETTINGS, **SETTINGS)
  clf = classifier_lib.get_classifier("toy", toy_cache, settings=SETTINGS, data=toy_splits())
  train = toy_splits()[0].astype(np.float32) / 255.0
  mean, scale = kid_lib.standardisation(clf(train))
  np.testing.assert_allclose(clf.feature_mean, mean, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(clf.feature_scale, scale, rtol=1e-6)
  np.testing.assert_allclose(clf.kid_features(clf(train)).mean(0), 0.0, atol=1e-5)
  # A cache file from before the scale existed (or of another version): weights kept.
  old = classifier_lib.cache_path(str(tmp_path), "toy", settings)
  os.makedirs(os.path.dirname(old))
  with np.load(classifier_lib.cache_path(toy_cache, "toy", settings)) as npz:
    kept = {k: npz[k] for k in npz.files if not k.startswith("kid_")}
  np.savez(old, **kept)
  capsys.readouterr()
  again = classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS,
                                        data=toy_splits())
  err = capsys.readouterr().err
  assert "adding KID's feature standardisation" in err and "training" not in err
  np.testing.assert_allclose(again.feature_scale, clf.feature_scale)
  with np.load(old) as npz:
    assert int(npz["kid_normalisation_version"]) == classifier_lib.KID_NORMALISATION_VERSION
    for k, v in kept.items():
      np.testing.assert_array_equal(npz[k], v)
  # Another version is recomputed, not read as this one.
  with np.load(old) as npz:
    stale = dict({k: npz[k] for k in npz.files}, kid_normalisation_version=99,
                 kid_feature_scale=123.0)
  np.savez(old, **stale)
  third = classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS,
                                        data=toy_splits())
  np.testing.assert_allclose(third.feature_scale, clf.feature_scale)
  shutil.rmtree(tmp_path / "classifier")
