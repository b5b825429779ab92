"""Offline TFDS builders: array_record data sets from local files, no network, no TensorFlow.

Sources: IDX files (mnist, fashion_mnist, any IDX set) or an image folder `DIR/<class>/*.png`
(optionally `DIR/train/<class>/...` and `DIR/test/<class>/...`; otherwise all is `train`).
Images are stored as `tfds.features.Tensor(uint8, encoding=zlib)`: an `Image` feature would
encode PNG through TensorFlow. Examples keep the source order (shuffling disabled).
"""

import dataclasses
import os
import re
from typing import Callable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from genimg_jax.data import idx
from genimg_jax.errors import UserError

PREPARED_VERSION = "1.0.0"  # Ours; stock TFDS versions (mnist 3.0.1) live in their own folders.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_DIRS = ("train", "test")  # Optional split subfolders of an image folder.
GREY_MODES = ("1", "L")  # Pillow modes stored with one channel.
ALPHA_MODES = ("RGBA", "LA", "PA")  # Pillow modes stored as RGBA; all others as RGB.

# Class names of the known IDX data sets (label i is names[i]).
IDX_CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}


@dataclasses.dataclass(frozen=True)
class Source:
  """A checked local data set: its shape, classes, split sizes and example iterator."""

  description: str
  image_shape: tuple[int, int, int]
  class_names: tuple[str, ...]  # Empty: unlabelled (no `label` feature).
  counts: dict[str, int]
  examples: Callable[[str], Iterator[tuple[np.ndarray, int]]]  # split -> (image, label).


def _is_idx_dir(directory: str) -> bool:
  stem = idx.IDX_FILES["train"][0]
  return any(os.path.exists(os.path.join(directory, stem + ext)) for ext in ("", ".gz"))


def idx_source(name: str, directory: str) -> Source:
  """All splits of an IDX folder, read into memory (MNIST-sized sets)."""
  splits = {split: idx.read_idx_split(directory, split) for split in idx.IDX_FILES}
  num_classes = 1 + max(int(labels.max(initial=0)) for _, labels in splits.values())
  names = IDX_CLASS_NAMES.get(name, tuple(str(i) for i in range(num_classes)))
  if num_classes > len(names):
    raise UserError(f"labels in {directory} go up to {num_classes - 1} but {name} has "
                    f"{len(names)} classes: are these the {name} IDX files?")

  def examples(split):
    images, labels = splits[split]
    return zip(images, labels.tolist())

  return Source(description=f"{name} prepared by genimg_jax.prepare from IDX files in {directory}",
                image_shape=tuple(splits["train"][0].shape[1:]), class_names=names,
                counts={split: len(labels) for split, (_, labels) in splits.items()},
                examples=examples)


def _visible(directory: str) -> list[str]:
  return sorted(e for e in os.listdir(directory) if not e.startswith("."))


def _image_files(directory: str) -> list[str]:
  return [os.path.join(directory, e) for e in _visible(directory)
          if e.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(directory, e))]


def _scan_split(root: str) -> list[tuple[str, str | None]]:
  """(path, class name or None) of every image under `root`, in class then file order."""
  classes = [e for e in _visible(root) if os.path.isdir(os.path.join(root, e))]
  loose = _image_files(root)
  if classes and loose:
    raise UserError(f"{root} holds both image files and class folders: put every image in "
                    f"a class folder {root}/<class>/")
  if loose:
    return [(path, None) for path in loose]
  files = []
  for name in classes:
    paths = _image_files(os.path.join(root, name))
    if not paths:
      raise UserError(f"class folder {os.path.join(root, name)} has no images "
                      f"({', '.join(IMAGE_EXTENSIONS)}): add some or remove it")
    files += [(path, name) for path in paths]
  return files


def _split_roots(directory: str) -> dict[str, str]:
  """split -> folder: `DIR/train`, `DIR/test` when present, else all of DIR is `train`."""
  entries = _visible(directory)
  present = [s for s in SPLIT_DIRS if s in entries and os.path.isdir(os.path.join(directory, s))]
  if not present:
    return {"train": directory}
  others = [e for e in entries if e not in present and os.path.isdir(os.path.join(directory, e))]
  if "train" not in present or others:
    raise UserError(f"{directory} has split folders ({', '.join(present)}) but "
                    f"{'also ' + ', '.join(others) if others else 'no train/'}: use "
                    f"DIR/train/<class>/ (and optionally DIR/test/<class>/) or only DIR/<class>/")
  return {s: os.path.join(directory, s) for s in present}


def _header(path: str) -> tuple[tuple[int, int], str]:
  """(width, height) and Pillow mode, from the file header only."""
  try:
    with Image.open(path) as im:
      return im.size, im.mode
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read image {path}: {e}") from None


def folder_source(name: str, directory: str) -> Source:
  """An image folder, checked up front (one size for all images); decoded while writing."""
  files = {split: _scan_split(root) for split, root in _split_roots(directory).items()}
  everything = [f for split_files in files.values() for f in split_files]
  if not everything:
    raise UserError(f"no IDX files ({idx.IDX_FILES['train'][0]}[.gz]) and no images "
                    f"({', '.join(IMAGE_EXTENSIONS)}) in {directory}: expected DIR/<class>/*.png")
  labelled = {cls is not None for _, cls in everything}
  if len(labelled) > 1:
    raise UserError(f"{directory}: one split has class folders and another has loose images: "
                    f"use class folders everywhere")
  class_names = tuple(sorted({cls for _, cls in everything})) if labelled == {True} else ()
  first_size, modes = None, set()
  for path, _ in everything:
    size, mode = _header(path)
    if first_size is None:
      first_path, first_size = path, size
    elif size != first_size:
      raise UserError(f"images have different sizes: {first_path} is {first_size[0]}x"
                      f"{first_size[1]}, {path} is {size[0]}x{size[1]}: resize them to one size")
    modes.add(mode)
  mode = ("L" if modes <= set(GREY_MODES) else "RGBA" if modes & set(ALPHA_MODES) else "RGB")
  shape = (first_size[1], first_size[0], len(mode))
  label_of = {cls: i for i, cls in enumerate(class_names)}

  def examples(split):
    for path, cls in files[split]:
      with Image.open(path) as im:
        image = np.asarray(im.convert(mode), np.uint8).reshape(shape)
      yield image, label_of.get(cls, 0)

  return Source(description=f"{name} prepared by genimg_jax.prepare from images in {directory}",
                image_shape=shape, class_names=class_names,
                counts={split: len(f) for split, f in files.items()}, examples=examples)


def read_source(name: str, directory: str) -> Source:
  """The checked source of data set `name`: IDX files if DIR has them, else an image folder."""
  if not NAME_PATTERN.fullmatch(name):
    raise UserError(f"data set name {name!r} is not valid: use lower case letters, digits "
                    f"and _ (like my_faces)")
  if not os.path.isdir(directory):
    raise UserError(f"source folder not found: {directory}")
  if _is_idx_dir(directory):
    return idx_source(name, directory)
  return folder_source(name, directory)


class OfflineImageBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes a `Source` as data set `name`; never registered, so stock `mnist` keeps its name.

  Reading needs no builder class: `tfds.builder_from_directory` restores the features from
  the `features.json` written next to the data.
  """

  VERSION = tfds.core.Version(PREPARED_VERSION)
  RELEASE_NOTES = {PREPARED_VERSION: "Prepared offline by genimg_jax.prepare."}

  def __init__(self, *, source: Source, **kwargs):
    self._source = source
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    features = {"image": tfds.features.Tensor(shape=self._source.image_shape, dtype=np.uint8,
                                              encoding=tfds.features.Encoding.ZLIB)}
    if self._source.class_names:
      features["label"] = tfds.features.ClassLabel(names=self._source.class_names)
    return tfds.core.DatasetInfo(
        builder=self, description=self._source.description,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=("image", "label") if self._source.class_names else None,
        disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split) for split in self._source.counts}

  def _generate_examples(self, split):
    labelled = bool(self._source.class_names)
    for key, (image, label) in enumerate(self._source.examples(split)):
      yield key, ({"image": image, "label": label} if labelled else {"image": image})

  # TFDS prints a "Downloading and preparing ..." banner; the CLI prints its own one line.
  def _log_download_bytes(self):
    pass

  def _log_download_done(self):
    pass


def make_builder(name: str, source: Source, data_dir: str) -> OfflineImageBuilder:
  """A builder writing `source` as `data_dir/name/PREPARED_VERSION` in array_record format."""
  cls = type(f"Offline_{name}", (OfflineImageBuilder,), {"name": name, "__module__": __name__},
             skip_registration=True)
  return cls(source=source, data_dir=data_dir, file_format="array_record")
