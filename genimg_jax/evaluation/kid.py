"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with a cubic polynomial kernel.

k(x, y) = (xᵀy / D + 1)³. For X = {x_i} (m real) and Y = {y_j} (n generated):
MMD²_u = 1/(m(m−1)) Σ_{i≠i'} k(x_i, x_i') + 1/(n(n−1)) Σ_{j≠j'} k(y_j, y_j')
         − 2/(mn) Σ_{i,j} k(x_i, y_j),
an unbiased estimate of MMD² (so it can be negative). KID reports its mean ± std over
`num_subsets` random subsets of `subset_size` from each set.

The 1/D in k assumes features of unit scale. Features that are not (the project's classifier's
ReLU features) are standardised first: z = (f − μ)/s, μ the mean and s² the mean per-dimension
variance of a fixed reference set (the train split), so every run of one space is measured on
the same scale.
"""

import numpy as np


def standardisation(features: np.ndarray) -> tuple[np.ndarray, float]:
  """(μ per dimension, s) of reference features [N, D] (float64): centred by μ and divided by
  one global s = √(Σ_j Var_j / D), the features have E‖z‖²/D = 1 on the reference set. One s
  for every dimension (not one σ per dimension): a near-constant unit is never blown up, and
  z stays a rotation of f − μ scaled by 1/s."""
  f = np.asarray(features, np.float64)
  mean = f.mean(axis=0)
  scale = float(np.sqrt(np.mean(f.var(axis=0))))
  return mean, (scale if scale > 0 else 1.0)


def standardise(features: np.ndarray, mean, scale) -> np.ndarray:
  """(f − μ)/s (float64); features unchanged when μ is None."""
  if mean is None:
    return features
  return (np.asarray(features, np.float64) - mean) / scale


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """k(x, y) = (xᵀy / D + 1)³ for rows of x [m, D], y [n, D] → [m, n] (float64)."""
  d = x.shape[1]
  return (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """The unbiased MMD²_u above (diagonal terms k(x_i, x_i) left out of the within-set means)."""
  m, n = len(x), len(y)
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
  within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
  return float(within_x + within_y - 2.0 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
  """(mean, std) of MMD²_u over `num_subsets` subsets of min(subset_size, m, n) rows of each set,
  drawn without replacement within a subset (numpy Generator seeded by `seed`)."""
  size = min(subset_size, len(real), len(fake))
  if size < 2:
    raise ValueError(f"KID needs at least 2 features per set, got {len(real)} and {len(fake)}")
  rng = np.random.default_rng(seed)
  values = [mmd2_unbiased(real[rng.choice(len(real), size, replace=False)],
                          fake[rng.choice(len(fake), size, replace=False)])
            for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))
