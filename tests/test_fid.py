"""FID against independent facts: zero for a set with itself, the closed form of commuting
Gaussians (also from samples), scipy's general matrix square root."""

import numpy as np
import pytest

from genimg_jax.evaluation import fid as fid_lib


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
