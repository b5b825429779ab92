"""Offline TFDS builders: array_record data sets from local files, no network, no TensorFlow.

Sources: IDX files (mnist, fashion_mnist, any IDX set) or an image folder `DIR/<class>/*.png`
(optionally `DIR/train/<class>/...` and `DIR/test/<class>/...`; otherwise all is `train`).
Written as `tfds build NAME --file_format=array_record` writes: `image` is a
`tfds.features.Image` (PNG; Pillow encodes it and hands TFDS the bytes as a file object, so no
TensorFlow), `label` a `ClassLabel`. `mnist` and `fashion_mnist` from IDX files get TFDS's own
name, version (3.0.1) and features, so the registered TFDS builders and `tfds.data_source`
read them; other sets are version 1.0.0. Examples keep the source order (shuffling disabled).
"""

import dataclasses
import io
import os
import re
from typing import Callable, Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from genimg_jax.data import idx
from genimg_jax.errors import UserError

PREPARED_VERSION = "1.0.0"  # Version of sets TFDS has no builder for (image folders, other IDX).
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_DIRS = ("train", "test")  # Optional split subfolders of an image folder.
GREY_MODES = ("1", "L")  # Pillow modes stored with one channel.
ALPHA_MODES = ("RGBA", "LA", "PA")  # Pillow modes stored as RGBA; all others as RGB.

# Class names of the known IDX data sets (label i is names[i]), as in TFDS's builders
# (tensorflow_datasets/image_classification/mnist.py: ClassLabel(num_classes=10) is "0".."9").
IDX_CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}
# TFDS's own version and image shape of the IDX sets it has builders for (same source file).
STOCK_VERSIONS = {"mnist": "3.0.1", "fashion_mnist": "3.0.1"}
STOCK_IMAGE_SHAPE = (28, 28, 1)


def prepared_version(name: str, from_idx: bool) -> str:
  """Version folder `prepare` writes: TFDS's own for its IDX sets, else PREPARED_VERSION."""
  return STOCK_VERSIONS.get(name, PREPARED_VERSION) if from_idx else PREPARED_VERSION


@dataclasses.dataclass(frozen=True)
class Source:
  """A checked local data set: its shape, classes, split sizes and example iterator."""

  description: str
  image_shape: tuple  # (H, W, C); H = W = None when the images differ in size.
  class_names: tuple[str, ...]  # Empty: unlabelled (no `label` feature).
  counts: dict[str, int]
  examples: Callable[[str], Iterator[tuple[np.ndarray, int]]]  # split -> (image [H, W, C], label).
  version: str = PREPARED_VERSION


def is_idx_dir(directory: str) -> bool:
  """Whether `directory` holds the canonical training-images IDX file (else: an image folder)."""
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

  shape = tuple(splits["train"][0].shape[1:])
  if name in STOCK_VERSIONS and shape != STOCK_IMAGE_SHAPE:
    raise UserError(f"the IDX images in {directory} are {shape[0]}x{shape[1]}, but {name} "
                    f"images are 28x28: are these the {name} IDX files? Otherwise use another name")
  return Source(description=f"{name} prepared by genimg_jax.prepare from IDX files in {directory}",
                image_shape=shape, class_names=names,
                counts={split: len(labels) for split, (_, labels) in splits.items()},
                examples=examples, version=prepared_version(name, from_idx=True))


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
  """An image folder, checked up front (readable headers, one colour mode for all); decoded
  while writing. Images of different sizes are kept as they are (shape None x None): load
  them with `image_size` (`--config.image_size=N`) to crop and resize them to one size."""
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
  sizes, modes = set(), set()
  for path, _ in everything:
    size, mode = _header(path)
    sizes.add(size)
    modes.add(mode)
  mode = ("L" if modes <= set(GREY_MODES) else "RGBA" if modes & set(ALPHA_MODES) else "RGB")
  width, height = next(iter(sizes)) if len(sizes) == 1 else (None, None)  # None: sizes differ.
  shape = (height, width, len(mode))
  label_of = {cls: i for i, cls in enumerate(class_names)}

  def examples(split):
    for path, cls in files[split]:
      with Image.open(path) as im:
        image = np.asarray(im.convert(mode), np.uint8)
      yield image.reshape(image.shape[:2] + (len(mode),)), label_of.get(cls, 0)

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
  if is_idx_dir(directory):
    return idx_source(name, directory)
  return folder_source(name, directory)


def encode_png(image: np.ndarray) -> io.BytesIO:
  """uint8 [H, W, C] (C = 1, 3 or 4) → a file object of its PNG bytes (lossless, Pillow)."""
  buffer = io.BytesIO()
  Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buffer, format="PNG")
  buffer.seek(0)
  return buffer


class OfflineImageBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes a `Source` as data set `name`; never registered, so TFDS's own `mnist` builder
  keeps its name (and reads what this one writes as `mnist/3.0.1`).

  Reading needs no builder class: `tfds.builder_from_directory` restores the features from
  the `features.json` written next to the data.
  """

  VERSION = tfds.core.Version(PREPARED_VERSION)  # Replaced per set by `make_builder`.

  def __init__(self, *, source: Source, **kwargs):
    self._source = source
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    features = {"image": tfds.features.Image(shape=self._source.image_shape)}
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
      png = encode_png(image)  # TFDS reads a file object as encoded bytes: no TensorFlow.
      yield key, ({"image": png, "label": label} if labelled else {"image": png})

  # TFDS prints a "Downloading and preparing ..." banner; the CLI prints its own one line.
  def _log_download_bytes(self):
    pass

  def _log_download_done(self):
    pass


def make_builder(name: str, source: Source, data_dir: str) -> OfflineImageBuilder:
  """A builder writing `source` as `data_dir/name/source.version` in array_record format."""
  version = tfds.core.Version(source.version)
  cls = type(f"Offline_{name}", (OfflineImageBuilder,),
             {"name": name, "__module__": __name__, "VERSION": version,
              "RELEASE_NOTES": {source.version: "Prepared offline by genimg_jax.prepare."}},
             skip_registration=True)
  return cls(source=source, data_dir=data_dir, file_format="array_record")
