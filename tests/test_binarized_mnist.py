"""binarized_mnist: `prepare` from Larochelle's `.amat` files (checksums verified) into TFDS's own
layout, read back by `tfds.data_source` and `load_dataset` as 0/255 pixels, split validation."""

import gzip
import hashlib
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import TINY_RUN, run_python
from genimg_jax import errors, prepare
from genimg_jax.data import amat, load_dataset, load_split
from genimg_jax.errors import UserError
from test_tfds_data import run_guarded

COUNTS = {"train": 6, "validation": 3, "test": 2}
GZIPPED = {"train"}  # The other splits are written as plain text.
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binarized_mnist"


def amat_text(bits: np.ndarray) -> bytes:
  """`.amat` lines: 784 space-separated 0/1 per image, newline-terminated (the original layout)."""
  return "".join(" ".join(map(str, row)) + "\n" for row in bits.reshape(len(bits), -1)).encode()


def write_amat(directory: Path, split: str, text: bytes) -> Path:
  """Writes the split's file, gzip-compressed for the splits in GZIPPED; returns its path."""
  path = directory / amat.FILES[split]
  if split in GZIPPED:
    path = path.with_name(path.name + ".gz")
    path.write_bytes(gzip.compress(text))
  else:
    path.write_bytes(text)
  return path


@pytest.fixture
def amat_dir(tmp_path, monkeypatch):
  """Tiny random `.amat` files whose digests replace the published ones (synthetic files cannot
  match them); returns the folder and each split's bits uint8 [n, 28, 28, 1]."""
  rng = np.random.default_rng(3)
  directory = tmp_path / "amat"
  directory.mkdir()
  bits, digests = {}, {}
  for split, n in COUNTS.items():
    bits[split] = (rng.random((n, 28, 28, 1)) < 0.13).astype(np.uint8)
    text = amat_text(bits[split])
    digests[split] = hashlib.sha256(text).hexdigest()
    write_amat(directory, split, text)
  monkeypatch.setattr(amat, "SHA256", digests)
  return directory, bits


def run_cli(capsys, monkeypatch, *argv) -> tuple[int, str, str]:
  """`python -m genimg_jax.prepare ARGV` in-process: (exit code, stdout, stderr). Verbose mode
  keeps pytest's stderr open (a failing CLI otherwise points fd 2 at /dev/null)."""
  monkeypatch.setenv(errors.VERBOSE_ENV, "1")
  try:
    prepare.main([str(a) for a in argv])
    code = 0
  except SystemExit as e:
    code = e.code
  out, err = capsys.readouterr()
  return code, out, err


def test_round_trip_through_tfds_data_source_and_load_dataset(amat_dir, tmp_path, capsys, monkeypatch):
  """prepare writes train/validation/test of 0/1 images; TFDS's own reader gives the bits back,
  load_dataset gives 255 × the bits as uint8 [N, 28, 28, 1] with no labels."""
  directory, bits = amat_dir
  data_dir = tmp_path / "tfds"
  code, out, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                           "--data_dir", data_dir)
  assert code == 0, err
  assert out.count("\n") == 1 and "train 6, validation 3, test 2" in out
  sources = tfds.data_source("binarized_mnist", data_dir=str(data_dir))
  assert sorted(sources) == sorted(COUNTS)
  for split, n in COUNTS.items():
    assert len(sources[split]) == n
    stored = np.stack([sources[split][i]["image"] for i in range(n)])
    np.testing.assert_array_equal(stored, bits[split])
    data = load_dataset("binarized_mnist", split, str(data_dir))
    assert data.images.dtype == np.uint8 and data.images.shape == (n, 28, 28, 1)
    np.testing.assert_array_equal(data.images, 255 * bits[split])
    assert data.num_classes == 0


def test_damaged_file_is_one_line_naming_it(amat_dir, tmp_path, capsys, monkeypatch):
  """One changed byte in a plain file, or a truncated gzip file: non-zero exit, one line naming it."""
  directory, _ = amat_dir
  plain = directory / amat.FILES["test"]
  text = bytearray(plain.read_bytes())
  text[0] = ord("1") if text[0] == ord("0") else ord("0")  # Still well-formed, but not the file.
  plain.write_bytes(bytes(text))
  code, out, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                           "--data_dir", tmp_path / "tfds")
  assert code not in (0, None) and out == ""
  assert err.count("\n") == 1 and str(plain) in err and "SHA-256" in err, err
  assert not (tmp_path / "tfds" / "binarized_mnist").exists()


def test_validation_split_of_a_set_without_one_is_one_line():
  with pytest.raises(UserError, match=r"^data set 'mnist_embedded' has no validation split: "):
    load_dataset("mnist_embedded", "validation")
