"""Fréchet distance between Gaussian fits of two feature sets (FID), in float64.

FID = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2})   (Heusel et al. 2017).
tr (Σ₁Σ₂)^{1/2} = tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}: both square roots are of symmetric PSD
matrices, so they come from eigen-decompositions (no complex round-off as with a general sqrtm).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class GaussianStats:
  """Mean [D] and covariance [D, D] (float64, unbiased: ÷ (n − 1)) of n feature vectors."""

  mean: np.ndarray
  cov: np.ndarray
  count: int


def gaussian_stats(features: np.ndarray) -> GaussianStats:
  """μ = (1/n) Σ f_i and Σ = (1/(n−1)) Σ (f_i − μ)(f_i − μ)ᵀ of features [n, D], in float64."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or len(f) < 2:
    raise ValueError(f"need features [n >= 2, D], got shape {f.shape}")
  return GaussianStats(f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1]),
                       len(f))


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
  """Symmetric PSD square root A^{1/2} = V diag(√max(λ, 0)) Vᵀ from A = V diag(λ) Vᵀ (float64).

  Negative eigenvalues (round-off of a PSD matrix) are clipped to 0.
  """
  a = np.asarray(matrix, np.float64)
  eigvals, eigvecs = np.linalg.eigh((a + a.T) / 2.0)
  return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
  """tr (Σ₁Σ₂)^{1/2} = Σ_i √λ_i(Σ₁^{1/2} Σ₂ Σ₁^{1/2}) (eigenvalues of a symmetric PSD matrix)."""
  root1 = sqrtm_psd(cov1)
  middle = root1 @ np.asarray(cov2, np.float64) @ root1
  eigvals = np.linalg.eigvalsh((middle + middle.T) / 2.0)
  return float(np.sum(np.sqrt(np.clip(eigvals, 0.0, None))))


def frechet_distance(stats1: GaussianStats, stats2: GaussianStats) -> float:
  """‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^{1/2}; clipped at 0 (round-off only)."""
  diff = stats1.mean - stats2.mean
  value = (diff @ diff + np.trace(stats1.cov) + np.trace(stats2.cov)
           - 2.0 * trace_sqrt_product(stats1.cov, stats2.cov))
  return max(float(value), 0.0)


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
  """FID of two feature sets [n1, D], [n2, D] (n1 and n2 should be stated with the number)."""
  return frechet_distance(gaussian_stats(features1), gaussian_stats(features2))
