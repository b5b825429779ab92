"""The embedded digits (mnist_embedded): the shapes and dtypes, and labels for conditional
models."""

import numpy as np

from genimg_jax.data import embedded


def test_the_embedded_set_has_labels_for_conditional_models():
  _, labels = embedded.load("train")
  assert labels.dtype == np.int32 and set(np.unique(labels)) == set(range(10))
