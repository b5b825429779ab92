"""build_embedded: the first NUM_TRAIN / NUM_TEST digits of IDX files, in their order, written as
an xz-packed npz that reads back exactly and is byte-for-byte reproducible; the shipped
mnist_embedded file is what it builds from the real MNIST files."""

import io
import lzma
import os

import numpy as np
import pytest

from genimg_jax.data import build_embedded, embedded, idx
from tests.conftest import REPO_ROOT
from test_tfds_data import write_idx

MNIST_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "mnist")


def _read(path):
  with open(path, "rb") as f, np.load(io.BytesIO(lzma.decompress(f.read()))) as npz:
    return {k: npz[k] for k in npz.files}


def test_keeps_the_first_digits_in_order_and_is_reproducible(tmp_path, monkeypatch):
  monkeypatch.setattr(build_embedded, "NUM_TRAIN", 5)
  monkeypatch.setattr(build_embedded, "NUM_TEST", 3)
  rng = np.random.default_rng(0)
  source = {"train": (rng.integers(0, 256, (8, 28, 28)), np.arange(8) % 10),
            "test": (rng.integers(0, 256, (6, 28, 28)), np.arange(6)[::-1])}
  for split, (images, labels) in source.items():
    image_stem, label_stem = idx.IDX_FILES[split]
    write_idx(tmp_path / f"{image_stem}.gz", images)
    write_idx(tmp_path / f"{label_stem}.gz", labels)
  first, second = tmp_path / "a.npz.xz", tmp_path / "b.npz.xz"
  info = build_embedded.build(str(tmp_path), str(first))
  assert info == {"train": 5, "test": 3, "bytes": os.path.getsize(first)}
  arrays = _read(first)
  assert sorted(arrays) == ["test_images", "test_labels", "train_images", "train_labels"]
  for split, count in (("train", 5), ("test", 3)):
    images, labels = source[split]
    np.testing.assert_array_equal(arrays[f"{split}_images"], images[:count].astype(np.uint8))
    np.testing.assert_array_equal(arrays[f"{split}_labels"], labels[:count].astype(np.uint8))
    assert arrays[f"{split}_images"].dtype == arrays[f"{split}_labels"].dtype == np.uint8
  build_embedded.build(str(tmp_path), str(second))
  assert first.read_bytes() == second.read_bytes()


@pytest.mark.slow  # xz at its strongest setting packs 22 MB of digits: tens of seconds.
@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason=f"real MNIST not found in {MNIST_DIR}")
def test_the_shipped_file_is_what_build_makes_of_real_mnist(tmp_path):
  out = tmp_path / "rebuilt.npz.xz"
  build_embedded.build(MNIST_DIR, str(out))
  with open(embedded.EMBEDDED_PATH, "rb") as f:
    assert out.read_bytes() == f.read()
