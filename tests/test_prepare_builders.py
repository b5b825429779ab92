"""prepare_builders.read_source: what may be called by a stock TFDS name (its image size)."""

import numpy as np
import pytest

from genimg_jax.data import idx, prepare_builders
from test_tfds_data import write_idx

MNIST_COUNTS = {"train": 30, "test": 10}


def test_stock_name_with_wrong_image_size_is_refused(tmp_path):
  """IDX images that are not 28x28 cannot be called mnist (TFDS's features say 28x28x1)."""
  for split, n in MNIST_COUNTS.items():
    image_stem, label_stem = idx.IDX_FILES[split]
    write_idx(tmp_path / f"{image_stem}.gz", np.zeros((n, 8, 8), np.uint8))
    write_idx(tmp_path / f"{label_stem}.gz", np.zeros(n, np.uint8))
  with pytest.raises(prepare_builders.UserError, match="but mnist images are 28x28"):
    prepare_builders.read_source("mnist", str(tmp_path))
  assert prepare_builders.read_source("tiny_idx", str(tmp_path)).version == "1.0.0"
