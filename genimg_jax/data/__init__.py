"""Data sets as host arrays: `load_dataset(name, split, ...)` is the one entry point training uses."""

import dataclasses

import numpy as np

from genimg_jax.data import binarize as binarize_lib
from genimg_jax.data import embedded, resize
from genimg_jax.errors import UserError

SPLITS = ("train", "validation", "test")
EMBEDDED_SPLITS = ("train", "test")
# Sets whose pixels are stored as 0/1 (TFDS's binarized_mnist): known by name, since an `Image`
# feature does not say so. They are loaded as 0/255, so the step's /255 gives 0/1 again.
BINARY_SETS = frozenset({"binarized_mnist"})


def is_binary_set(name: str) -> bool:
  """Whether data set `name` (NAME, NAME/CONFIG or NAME:VERSION) stores its pixels as 0/1."""
  return name.split(":")[0].split("/")[0] in BINARY_SETS


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

  @property
  def num_examples(self) -> int:
    return len(self.labels)


def load_dataset(name: str, split: str = "train", data_dir: str | None = None,
                 image_size: int = 0, binarize: str = "none", seed: int = 0) -> Dataset:
  """Loads split `split` of data set `name`: `mnist_embedded` or any prepared TFDS image set.

  image_size > 0 (`config.image_size`): every image is center-cropped to a square and resized
  to image_size × image_size once, here (Pillow BICUBIC per channel, antialiased when
  shrinking; see `genimg_jax.data.resize`), so sets whose images differ in size load too.
  Channels, dtype (uint8), labels and num_classes are unchanged. 0: images as stored.
  binarize (`config.binarize`, data/binarize.py): "static" draws every pixel once as 0 or 255
  from (seed, split), after resizing; "dynamic" does so for the evaluation splits only
  (training batches are drawn afresh per batch); "none" leaves the grey levels.
  Sets in BINARY_SETS (stored as 0/1) are returned as 0/255 and refuse any binarisation.
  """
  if split not in SPLITS:
    raise UserError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
  if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) \
      or image_size < 0:
    raise UserError(f"image_size must be a non-negative integer (0: as stored), got "
                    f"{image_size!r}")
  image_size = int(image_size)
  if binarize not in binarize_lib.MODES:
    raise UserError(f"unknown binarisation {binarize!r}: use one of "
                    f"{', '.join(binarize_lib.MODES)}")
  if binarize != "none" and is_binary_set(name):
    raise UserError(f"data set {name!r} is already binary (fixed 0/1 pixels): "
                    f"binarize={binarize!r} (config.binarize) would binarise it a second time; use "
                    f"'none'")
  if name == embedded.NAME:
    if split not in EMBEDDED_SPLITS:
      raise UserError(f"data set {name!r} has no {split} split: it has "
                      f"{' and '.join(EMBEDDED_SPLITS)} only (binarized_mnist has a validation "
                      f"split)")
    images, labels = embedded.load(split)
    if image_size:
      images = resize.resize_images(images, image_size)
    num_classes = embedded.NUM_CLASSES
  else:
    from genimg_jax.data import tfds_source  # Imported lazily: TFDS is slow to import.

    images, labels, num_classes = tfds_source.load(name, split, data_dir, image_size)
  images = binarize_lib.for_split(images, binarize, seed, split)
  return Dataset(name, split, images, labels, num_classes)


def load_split(config, split: str = "train") -> Dataset:
  """Split `split` of the config's data set as its runs train and score on: `config.dataset`,
  `data_dir`, `image_size`, and `binarize` seeded by `config.seed`."""
  return load_dataset(config.dataset, split, config.data_dir or None, config.image_size,
                      config.binarize, config.seed)
