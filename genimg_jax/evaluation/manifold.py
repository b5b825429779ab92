"""k-NN manifold metrics: precision/recall (Kynkäänniemi et al. 2019, k = 3) and
density/coverage (Naeem et al. 2020, k = 5).

Each real feature x_i gets a ball B(x_i, r_i) with r_i the distance to its k-th nearest other
real feature; likewise each fake y_j with its k-th nearest other fake.
- precision = (1/n) Σ_j 1[y_j ∈ ∪_i B(x_i, r_i)]   (fakes on the real manifold)
- recall    = (1/m) Σ_i 1[x_i ∈ ∪_j B(y_j, s_j)]   (reals on the fake manifold)
  so swapping the two sets swaps precision and recall.
- density   = 1/(k n) Σ_j Σ_i 1[y_j ∈ B(x_i, r_i)]
- coverage  = (1/m) Σ_i 1[∃ j: y_j ∈ B(x_i, r_i)]
Distances are Euclidean, computed in row blocks so m × n never sits in memory at once.
"""

import numpy as np

_BLOCK = 2048  # Rows per block of the pairwise-distance computations.


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """‖a_i − b_j‖² for a [p, D], b [q, D] → [p, q] (float64, clipped at 0)."""
  d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
  return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
  """Squared distance of each row to its k-th nearest *other* row: [n] (self, at 0, excluded)."""
  f = np.asarray(features, np.float64)
  if len(f) <= k:
    raise ValueError(f"k-NN radii need more than k = {k} features, got {len(f)}")
  radii = np.empty(len(f))
  for start in range(0, len(f), _BLOCK):
    d = _sq_distances(f[start:start + _BLOCK], f)
    radii[start:start + _BLOCK] = np.partition(d, k, axis=1)[:, k]  # Index 0 is the self-distance.
  return radii


def _inside_counts(centres: np.ndarray, radii: np.ndarray, points: np.ndarray) -> tuple:
  """(per point: how many balls B(centre_i, r_i) hold it [n], per centre: does any point lie in
  its ball [m] bool)."""
  c, p = np.asarray(centres, np.float64), np.asarray(points, np.float64)
  counts = np.zeros(len(p), np.int64)
  covered = np.zeros(len(c), bool)
  for start in range(0, len(p), _BLOCK):
    inside = _sq_distances(p[start:start + _BLOCK], c) <= radii[None, :]  # [block, m]
    counts[start:start + _BLOCK] = inside.sum(1)
    covered |= inside.any(0)
  return counts, covered


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
  """(precision, recall) with k-NN manifolds of both sets (formulas in the module docstring)."""
  fake_in_real, _ = _inside_counts(real, knn_radii(real, k), fake)
  real_in_fake, _ = _inside_counts(fake, knn_radii(fake, k), real)
  return float(np.mean(fake_in_real > 0)), float(np.mean(real_in_fake > 0))


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
  """(density, coverage) with the k-NN manifold of the real set only."""
  counts, covered = _inside_counts(real, knn_radii(real, k), fake)
  return float(counts.sum() / (k * len(fake))), float(np.mean(covered))
