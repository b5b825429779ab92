"""`binarized_mnist` from Larochelle & Murray's `.amat` files, checked before it is written.

The three files `binarized_mnist_{train,valid,test}.amat` (gzip-compressed or plain) hold one
image per line: 784 space-separated 0/1 values, row-major 28×28. Each file's SHA-256 (of the
uncompressed bytes) must equal the one tensorflow-datasets publishes for it
(tensorflow_datasets/datasets/binarized_mnist/checksums.tsv), so a prepared set is the original
data byte for byte. The set is written as TFDS's own `binarized_mnist` builder writes it: version
1.0.0, splits train / validation / test, one `image` feature (28×28×1 uint8 holding 0/1), no
labels; so `tfds.data_source('binarized_mnist', data_dir=D)` reads it.
"""

import gzip
import hashlib
import os
import zlib

import numpy as np

from genimg_jax.data.prepare_builders import Source
from genimg_jax.errors import UserError

NAME = "binarized_mnist"
VERSION = "1.0.0"  # TFDS's binarized_mnist builder (datasets/binarized_mnist).
IMAGE_SHAPE = (28, 28, 1)
PIXELS = 28 * 28
# split (TFDS's names) → file name, as in TFDS's builder.
FILES = {"train": "binarized_mnist_train.amat", "validation": "binarized_mnist_valid.amat",
         "test": "binarized_mnist_test.amat"}
# SHA-256 of the uncompressed files, from tensorflow-datasets 4.9.10's checksums.tsv.
SHA256 = {
    "train": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
    "validation": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
    "test": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
}
DESCRIPTION = ("A specific binarization of the MNIST dataset (Larochelle & Murray, 2011), "
               "prepared by genimg_jax.prepare from the .amat files in {directory}; pixels are "
               "0/1.")


def find_file(directory: str, split: str) -> str:
  """Path of the split's `.amat` file in `directory`: plain, else `.gz`."""
  stem = os.path.join(directory, FILES[split])
  for path in (stem, stem + ".gz"):
    if os.path.isfile(path):
      return path
  raise UserError(f"{FILES[split]}[.gz] not found in {directory}: binarized_mnist is prepared "
                  f"from Larochelle's files {', '.join(FILES.values())} (gzip-compressed or not)")


def read_bytes(path: str) -> bytes:
  """The file's uncompressed bytes (gunzipped when it is a gzip file)."""
  try:
    with open(path, "rb") as f:
      data = f.read()
    if data[:2] == b"\x1f\x8b":
      data = gzip.decompress(data)
  except (OSError, EOFError, zlib.error) as e:
    raise UserError(f"{path} is damaged or truncated ({e}): get the original file again") from None
  return data


def check_sha256(path: str, data: bytes, expected: str) -> None:
  """Refuses a file whose uncompressed bytes are not the published ones."""
  digest = hashlib.sha256(data).hexdigest()
  if digest != expected:
    raise UserError(f"{path} is not the original {os.path.basename(path).removesuffix('.gz')}: "
                    f"its SHA-256 {digest[:16]}… is not the published {expected[:16]}… (wrong, "
                    f"truncated or damaged file: get the original again)")


def parse(path: str, data: bytes) -> np.ndarray:
  """`.amat` text → uint8 [N, 28, 28, 1] of 0/1; a line that is not 784 values of 0/1 is refused
  naming the file and line. Blank lines are skipped (as numpy.loadtxt, TFDS's reader, does)."""
  width = 2 * PIXELS  # "d d … d\n": the canonical layout, checked at once.
  if data and len(data) % width == 0:
    rows = np.frombuffer(data, np.uint8).reshape(-1, width)
    separators = np.full(width // 2, ord(" "), np.uint8)
    separators[-1] = ord("\n")
    if np.isin(rows[:, 0::2], (ord("0"), ord("1"))).all() and (rows[:, 1::2] == separators).all():
      return (rows[:, 0::2] - ord("0")).reshape((-1,) + IMAGE_SHAPE)
  images = []  # Any other spacing or line ending: line by line, to name a bad line.
  for number, line in enumerate(data.split(b"\n"), 1):
    values = line.split()
    if not values:
      continue
    if len(values) != PIXELS or not set(values) <= {b"0", b"1"}:
      found = f"{len(values)} values" if len(values) != PIXELS else "values other than 0/1"
      raise UserError(f"{path} line {number}: expected {PIXELS} space-separated values of 0/1, "
                      f"found {found}")
    images.append(np.array(values) == b"1")
  if not images:
    raise UserError(f"{path} holds no images")
  return np.stack(images).astype(np.uint8).reshape((-1,) + IMAGE_SHAPE)


def read_split(directory: str, split: str, digests: dict | None = None) -> np.ndarray:
  """One split's images, uint8 [N, 28, 28, 1] of 0/1, after the checksum (`digests`, default
  the published SHA256) and every line are checked."""
  path = find_file(directory, split)
  data = read_bytes(path)
  check_sha256(path, data, (digests or SHA256)[split])
  return parse(path, data)


def amat_source(directory: str, digests: dict | None = None) -> Source:
  """The checked `binarized_mnist` source: all three splits read into memory (~70 MB)."""
  if not os.path.isdir(directory):
    raise UserError(f"source folder not found: {directory}")
  for split in FILES:  # All three present before any is read.
    find_file(directory, split)
  splits = {split: read_split(directory, split, digests) for split in FILES}

  def examples(split):
    return ((image, 0) for image in splits[split])

  return Source(description=DESCRIPTION.format(directory=directory), image_shape=IMAGE_SHAPE,
                class_names=(), counts={split: len(images) for split, images in splits.items()},
                examples=examples, version=VERSION)
