"""KID against the closed-form MMD of a cubic kernel (unbiasedness) and its behaviour on equal and
shifted distributions."""

import numpy as np

from genimg_jax.evaluation import kid as kid_lib


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
