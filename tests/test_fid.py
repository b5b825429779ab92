"""FID, KID, precision/recall, density/coverage and the classifier scores against independent
facts: closed forms, scipy's general matrix square root, unbiasedness, the papers' symmetries."""

import numpy as np
import pytest

from genimg_jax.evaluation import fid as fid_lib
from genimg_jax.evaluation import kid as kid_lib
from genimg_jax.evaluation import manifold, scores


def _random_cov(rng, d):
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


def test_fid_of_a_set_with_itself_is_zero():
  f = np.random.default_rng(0).normal(size=(300, 16)) * 3.0 + 1.0
  assert fid_lib.fid(f, f) == pytest.approx(0.0, abs=1e-8)


def test_fid_equals_the_closed_form_for_commuting_gaussians():
  # Diagonal covariances commute: FID = ‖μ₁ − μ₂‖² + Σ_i (√a_i − √b_i)².
  rng = np.random.default_rng(1)
  mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
  a, b = rng.uniform(0.1, 4.0, 5), rng.uniform(0.1, 4.0, 5)
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  got = fid_lib.frechet_distance(fid_lib.GaussianStats(mu1, np.diag(a), 0),
                                 fid_lib.GaussianStats(mu2, np.diag(b), 0))
  assert got == pytest.approx(expected, rel=1e-10)
  # And from samples of the two Gaussians (closed form within sampling error).
  n = 200_000
  f1 = mu1 + rng.normal(size=(n, 5)) * np.sqrt(a)
  f2 = mu2 + rng.normal(size=(n, 5)) * np.sqrt(b)
  assert fid_lib.fid(f1, f2) == pytest.approx(expected, abs=0.03)


def test_matrix_square_root_agrees_with_scipy():
  scipy_linalg = pytest.importorskip("scipy.linalg")
  rng = np.random.default_rng(2)
  s1, s2 = _random_cov(rng, 12), _random_cov(rng, 12)
  root = fid_lib.sqrtm_psd(s1)
  np.testing.assert_allclose(root, scipy_linalg.sqrtm(s1).real, rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(root @ root, s1, rtol=1e-10, atol=1e-12)
  # Non-commuting covariances: tr (Σ₁Σ₂)^{1/2} as scipy's general sqrtm gives it.
  expected = np.trace(scipy_linalg.sqrtm(s1 @ s2)).real
  assert fid_lib.trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-8)


def test_kid_is_unbiased_against_the_closed_form_mmd():
  # 1-D features, k(x, y) = (xy + 1)³ = x³y³ + 3x²y² + 3xy + 1, so
  # MMD² = (E x³ − E y³)² + 3 (E x² − E y²)² + 3 (E x − E y)². x ~ N(0, 1), y ~ N(μ, 1).
  mu = 0.3
  exact = (mu**3 + 3 * mu) ** 2 + 3 * (mu**2) ** 2 + 3 * mu**2
  rng = np.random.default_rng(3)
  m, trials = 8, 6000
  unbiased, biased = [], []
  for _ in range(trials):
    x, y = rng.normal(size=(m, 1)), rng.normal(size=(m, 1)) + mu
    unbiased.append(kid_lib.mmd2_unbiased(x, y))
    kxx, kyy = kid_lib.polynomial_kernel(x, x), kid_lib.polynomial_kernel(y, y)
    biased.append(kxx.mean() + kyy.mean() - 2 * kid_lib.polynomial_kernel(x, y).mean())
  stderr = np.std(unbiased) / np.sqrt(trials)
  assert abs(np.mean(unbiased) - exact) < 4 * stderr, (np.mean(unbiased), exact, stderr)
  assert np.mean(biased) - exact > 8 * stderr  # The V-statistic is biased upwards: it would fail.


def test_kid_mean_is_about_zero_for_one_distribution_and_positive_otherwise():
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
  mean, std = kid_lib.kid(a, b, num_subsets=50, subset_size=200)
  assert abs(mean) < 3 * std / np.sqrt(50) + 1e-4, (mean, std)
  shifted, _ = kid_lib.kid(a, b + 0.5, num_subsets=50, subset_size=200)
  assert shifted > 20 * std


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
