"""The classifier scores: Inception Score bounds, class accuracy, intra-class FID."""

import numpy as np
import pytest

from genimg_jax.evaluation import scores


def test_inception_score_bounds_and_class_scores():
  confident = np.eye(10)[np.arange(1000) % 10]
  assert scores.inception_score(confident, num_splits=5)[0] == pytest.approx(10.0, rel=1e-6)
  one_class = np.tile(np.eye(10)[3], (1000, 1))
  assert scores.inception_score(one_class, num_splits=5)[0] == pytest.approx(1.0, abs=1e-6)
  uniform = np.full((1000, 10), 0.1)
  assert scores.inception_score(uniform, num_splits=5)[0] == pytest.approx(1.0, abs=1e-6)
  labels = np.arange(1000) % 10
  assert scores.class_accuracy(confident, labels) == 1.0
  assert scores.class_accuracy(confident, (labels + 1) % 10) == 0.0
  rng = np.random.default_rng(7)
  real = rng.normal(size=(400, 3)) + labels[:400, None]
  assert scores.intra_class_fid(real, labels[:400], real, labels[:400]) == pytest.approx(0, abs=1e-8)
  # Mislabelled fakes are far from their class's reals; overall FID would not see it.
  assert scores.intra_class_fid(real, (labels[:400] + 5) % 10, real, labels[:400]) > 10
