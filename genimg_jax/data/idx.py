"""Reader for the IDX format of MNIST / Fashion-MNIST (optionally gzip-compressed)."""

import gzip
import os
import struct

import numpy as np

from genimg_jax.errors import UserError

_IDX_UBYTE = 0x08  # IDX type code for unsigned bytes, the only one MNIST uses.


def read_idx(path: str) -> np.ndarray:
  """Returns the uint8 array stored in an IDX file (`.gz` is decompressed).

  Header: two zero bytes, a type byte (0x08 = uint8), the number of dimensions, then each
  dimension as a big-endian uint32, then the data row-major.
  """
  if not os.path.exists(path):
    raise UserError(f"IDX file not found: {path}")
  opener = gzip.open if path.endswith(".gz") else open
  try:
    with opener(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise UserError(f"cannot read IDX file {path}: {e}") from None
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
    raise UserError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
  ndim = raw[3]
  header = 4 + 4 * ndim
  dims = struct.unpack(">" + "I" * ndim, raw[4:header])
  if len(raw) - header != int(np.prod(dims)):
    raise UserError(f"{path} is truncated: header says {dims}, data has {len(raw) - header} bytes")
  return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


# File names of the canonical distribution, per split.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_idx_file(directory: str, stem: str) -> str:
  """Path of `stem` or `stem.gz` in `directory` (both names are common)."""
  for name in (stem + ".gz", stem):
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  raise UserError(f"{stem}[.gz] not found in {directory}: expected the canonical IDX files there")


def read_idx_split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 [N, 28, 28, 1], labels int32 [N]) of one split of an IDX data set folder."""
  image_stem, label_stem = IDX_FILES[split]
  images = read_idx(find_idx_file(directory, image_stem))
  labels = read_idx(find_idx_file(directory, label_stem))
  if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
    raise UserError(f"IDX files in {directory} disagree: images {images.shape}, labels {labels.shape}")
  return images[..., None], labels.astype(np.int32)
