"""Scores that use the classifier's predictions: Inception-style score, class-conditional
accuracy and intra-class FID."""

import numpy as np

from genimg_jax.evaluation import fid as fid_lib


def inception_score(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
  """IS = exp(E_x KL(p(y|x) ‖ p(y))), p(y) the split's mean of p(y|x); (mean, std) over splits.

  probs: [N, classes] rows of p(y|x). Ranges from 1 (one class, or uniform p(y|x)) to the
  number of classes (confident and balanced).
  """
  p = np.asarray(probs, np.float64)
  values = []
  for part in np.array_split(p, num_splits):
    marginal = part.mean(axis=0, keepdims=True)
    kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), axis=1)
    values.append(np.exp(kl.mean()))
  return float(np.mean(values)), float(np.std(values))


def class_accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of class-conditional samples the classifier assigns to the class they were drawn
  for: mean_j 1[argmax p(y|x_j) = y_j]."""
  return float(np.mean(np.argmax(probs, axis=1) == np.asarray(labels)))


def intra_class_fid(fake: np.ndarray, fake_labels: np.ndarray, real: np.ndarray,
                    real_labels: np.ndarray) -> float:
  """Mean over classes c of FID(fakes drawn for c, reals of class c); classes with < 2 of either
  are skipped."""
  values = []
  for c in np.unique(real_labels):
    f, r = fake[fake_labels == c], real[real_labels == c]
    if len(f) >= 2 and len(r) >= 2:
      values.append(fid_lib.fid(f, r))
  return float(np.mean(values)) if values else float("nan")
