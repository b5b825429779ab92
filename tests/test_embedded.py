"""The embedded digits (mnist_embedded): the shapes and dtypes, and labels for conditional
models."""

import numpy as np

from genimg_jax.data import embedded


def test_the_embedded_set_has_labels_for_conditional_models():
  _, labels = embedded.load("train")
  assert labels.dtype == np.int32 and set(np.unique(labels)) == set(range(10))


def test_splits_hold_the_documented_counts_of_28x28_digits():
  for split, count in (("train", 24_000), ("test", 4_000)):
    images, labels = embedded.load(split)
    assert images.shape == (count, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (count,) and labels.dtype == np.int32
    assert 0 < images.mean() < 255 and images.max() == 255  # Digits: dark ground, bright strokes.
  counts = np.bincount(embedded.load("train")[1], minlength=10)
  assert np.all(np.abs(counts - 2_400) < 400), counts  # Nearly balanced: 2,144 to 2,732.
