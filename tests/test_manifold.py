"""Precision/recall and density/coverage against the papers' symmetries and a mode-dropping set;
k-NN radii against hand-computed distances."""

import numpy as np

from genimg_jax.evaluation import manifold


def test_precision_recall_of_identical_sets_is_one():
  f = np.random.default_rng(5).normal(size=(200, 4))
  assert manifold.precision_recall(f, f.copy(), k=3) == (1.0, 1.0)
  density, coverage = manifold.density_coverage(f, f.copy(), k=5)
  assert coverage == 1.0 and density >= 1.0  # Each fake lies at least in its own ball.


def test_precision_and_recall_swap_with_the_sets_and_point_the_papers_way():
  rng = np.random.default_rng(6)
  real = rng.normal(size=(800, 2))
  # Mode dropping: fakes from one half of the real distribution only. All fakes are realistic
  # (precision ≈ 1), half the real manifold is missed (recall ≈ 0.5): Kynkäänniemi et al.
  fake = rng.normal(size=(1600, 2))
  fake = fake[fake[:, 0] > 0][:800]
  precision, recall = manifold.precision_recall(real, fake, k=3)
  assert precision > 0.95 and 0.4 < recall < 0.7, (precision, recall)
  assert manifold.precision_recall(fake, real, k=3) == (recall, precision)
  density, coverage = manifold.density_coverage(real, fake, k=5)
  assert 0.4 < coverage < 0.7 and density > 0.8, (density, coverage)


def test_knn_radius_excludes_the_point_itself():
  points = np.array([[0.0], [1.0], [3.0], [7.0]])
  np.testing.assert_allclose(manifold.knn_radii(points, 1), [1.0, 1.0, 4.0, 16.0])
  np.testing.assert_allclose(manifold.knn_radii(points, 2), [9.0, 4.0, 9.0, 36.0])
