"""Data sets as host arrays: `load_dataset(config, split)` is the one entry point training uses."""

import dataclasses

import numpy as np

from genimg_jax.data import embedded
from genimg_jax.errors import UserError

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A whole split in host memory: images uint8 [N, H, W, C], labels int32 [N]."""

  name: str
  split: str
  images: np.ndarray
  labels: np.ndarray
  num_classes: int

  @property
  def image_shape(self) -> tuple[int, int, int]:
    return tuple(self.images.shape[1:])


def load_dataset(name: str, split: str = "train", data_dir: str | None = None) -> Dataset:
  """Loads split `split` of data set `name`: `mnist_embedded` or any prepared TFDS image set."""
  if split not in SPLITS:
    raise UserError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
  if name == embedded.NAME:
    images, labels = embedded.load(split)
    return Dataset(name, split, images, labels, embedded.NUM_CLASSES)
  from genimg_jax.data import tfds_source  # Imported lazily: TFDS is slow to import.

  images, labels, num_classes = tfds_source.load(name, split, data_dir)
  return Dataset(name, split, images, labels, num_classes)
