"""Any prepared TFDS image data set as host arrays, read without TensorFlow.

A data set is found by name under the data dir as `NAME[/CONFIG]/VERSION/dataset_info.json`
and opened with `tfds.builder_from_directory`, which rebuilds the features from the files
written next to the data. So sets prepared by `genimg_jax.prepare` (whose builders are never
registered) and sets built by `tfds build` read the same way, and a registered stock builder
of the same name (TFDS's `mnist`) is never involved (it reads `prepare`'s `mnist/3.0.1` too).
array_record (or parquet) sets are read through the random-access data source: no TensorFlow;
`Image` features are decoded by Pillow. A tfrecord set needs TensorFlow. With `image_size`
each image is center-cropped and resized as it is read (`genimg_jax.data.resize`).
`load` reads a whole split; `RandomAccessSplit` reads only the records asked for (streaming,
`config.data_on_device=False`).
Sets stored with 0/1 pixels (`genimg_jax.data.BINARY_SETS`, e.g. binarized_mnist) are returned
as 0/255 by both, before any resize, so the step's /255 gives 0/1 again.
"""

import importlib
import io
import json
import os
import re

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.core import constants, file_adapters, registered

from genimg_jax.data import is_binary_set, resize
from genimg_jax.errors import UserError

READ_CHUNK = 4096  # Records deserialised per `__getitems__` call: few Python calls, bounded memory.
VERSION_PATTERN = re.compile(r"\d+\.\d+\.\d+")
NAME_PATTERN = re.compile(r"[a-z0-9_]+(/[\w.\-]+)?(:\d+\.\d+\.\d+)?")  # name[/config][:version]
IMAGE_KEY, LABEL_KEY = "image", "label"
PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # Channels of an `Image` feature → Pillow mode.
RANDOM_ACCESS_FORMATS = tuple(f.value for f in file_adapters.FileFormat.with_random_access())


def resolve_data_dir(data_dir: str | None = None) -> str:
  """`data_dir`, else `$TFDS_DATA_DIR`, else TFDS's default `~/tensorflow_datasets`."""
  return os.path.expanduser(data_dir or constants.get_default_data_dir())


def _file_format(version_dir: str) -> str:
  """File format recorded in dataset_info.json (old sets without one are tfrecord)."""
  with open(os.path.join(version_dir, "dataset_info.json")) as f:
    return json.load(f).get("fileFormat", "tfrecord")


def _prepared_versions(dataset_dir: str) -> list[str]:
  """Version folders of `dataset_dir` holding a finished data set, oldest first."""
  if not os.path.isdir(dataset_dir):
    return []
  versions = [v for v in os.listdir(dataset_dir) if VERSION_PATTERN.fullmatch(v)
              and os.path.isfile(os.path.join(dataset_dir, v, "dataset_info.json"))]
  return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def _is_known_name(name: str) -> bool:
  """Whether TFDS has a builder called `name` (imports only that builder's module)."""
  try:
    tfds.builder_cls(name)
  except registered.DatasetNotFoundError:
    return False
  except Exception:  # pylint: disable=broad-except  # Registered, but its module failed to import.
    return True
  return True


def find_prepared(name: str, data_dir: str) -> str:
  """Folder of the version of `name[/config][:version]` to read: the newest one TFDS can read
  without TensorFlow (array_record, parquet), else the newest."""
  base, _, version = name.partition(":")
  if not NAME_PATTERN.fullmatch(name):
    raise UserError(f"data set name {name!r} is not valid: use NAME, NAME/CONFIG or "
                    f"NAME:VERSION with lower case TFDS names (like mnist or cifar10)")
  dataset_dir = os.path.join(data_dir, *base.split("/"))
  versions = _prepared_versions(dataset_dir)
  if version:
    versions = [v for v in versions if v == version]
  if versions:
    readable = [v for v in versions
                if _file_format(os.path.join(dataset_dir, v)) in RANDOM_ACCESS_FORMATS]
    return os.path.join(dataset_dir, (readable or versions)[-1])
  configs = [c for c in sorted(os.listdir(dataset_dir)) if _prepared_versions(
      os.path.join(dataset_dir, c))] if os.path.isdir(dataset_dir) else []
  if configs and "/" not in base:
    raise UserError(f"data set {base!r} in {data_dir} has configs {', '.join(configs)}: name "
                    f"one, like {base}/{configs[0]}")
  root = base.split("/")[0]
  if not _is_known_name(root):
    raise UserError(f"unknown data set {name!r}: it is not a TFDS data set and is not prepared "
                    f"in {data_dir}; check the name, or prepare it from an image folder with "
                    f"`python -m genimg_jax.prepare {root} --from DIR --data_dir {data_dir}`")
  raise UserError(f"data set {name!r} is not prepared in {data_dir} (no "
                  f"{dataset_dir}/<version>/dataset_info.json): on a machine with network run "
                  f"`tfds build {base} --data_dir {data_dir} --file_format=array_record`, or "
                  f"offline run `python -m genimg_jax.prepare {root} --from DIR --data_dir "
                  f"{data_dir}` (DIR: the IDX files of mnist/fashion_mnist, the .amat files of "
                  f"binarized_mnist, or DIR/<class>/*.png)")


def _binary_to_255(image: np.ndarray, name: str, split: str, index: int) -> np.ndarray:
  """A 0/1 image of a binary set → 0/255 (uint8); any other value means the files are not it."""
  if image.max(initial=0) > 1:
    raise UserError(f"{name} stores 0/1 pixels, but record {index} of {split} has values up to "
                    f"{int(image.max())}: prepare it again with `python -m genimg_jax.prepare "
                    f"{name.split(':')[0].split('/')[0]} --from DIR --overwrite`")
  return image * np.uint8(255)


def _tensorflow_available() -> bool:
  try:
    importlib.import_module("tensorflow")
  except ImportError:
    return False
  return True


def _image_key(features) -> str:
  """`image`, else the first Image feature."""
  if IMAGE_KEY in features:
    return IMAGE_KEY
  for key, feature in features.items():
    if isinstance(feature, tfds.features.Image):
      return key
  raise UserError(f"data set has no image feature (features: {', '.join(features)}): "
                  f"use an image data set")


def _as_hwc(image: np.ndarray) -> np.ndarray:
  """A 2-D image gets a channel axis: [H, W] → [H, W, 1]; [H, W, C] as is."""
  return image[..., None] if image.ndim == 2 else image


def _different_shapes(builder, split: str, first, other, index: int) -> UserError:
  """The one-line error for a set whose images differ in size (and no image_size given)."""
  return UserError(f"images of {builder.name} have different shapes ({first} and {other} at "
                   f"record {index} of {split}): pass --config.image_size=N to center-crop and "
                   f"resize every image to N×N at load time, or resize them to one size")


def _decode_image(encoded: bytes, channels: int) -> np.ndarray:
  """PNG/JPEG bytes of an `Image` feature → uint8 [H, W, channels], decoded by Pillow (what
  TFDS itself does without OpenCV, minus its per-run "OpenCV is not installed" warning)."""
  with Image.open(io.BytesIO(encoded)) as im:
    mode = PIL_MODES[channels]
    return _as_hwc(np.asarray(im if im.mode == mode else im.convert(mode), np.uint8))


def _read_random_access(builder, split: str, image_key: str, has_label: bool, image_size: int,
                        binary: bool):
  """Whole split via the array_record data source, `READ_CHUNK` records per call; with
  image_size > 0 each image is cropped and resized as it is read (sizes may differ); binary:
  0/1 pixels become 0/255 first."""
  feature = builder.info.features[image_key]
  encoded = isinstance(feature, tfds.features.Image) and feature.shape[-1] in PIL_MODES
  decoders = {image_key: tfds.decode.SkipDecoding()} if encoded else None
  source = builder.as_data_source(split=split, decoders=decoders)
  n = len(source)
  images, labels = None, np.zeros(n, np.int32)
  for start in range(0, n, READ_CHUNK):
    records = source.__getitems__(list(range(start, min(start + READ_CHUNK, n))))
    for i, record in enumerate(records, start):
      if encoded:
        image = _decode_image(record[image_key], feature.shape[-1])
      else:
        image = _as_hwc(np.asarray(record[image_key]))
      if binary:
        image = _binary_to_255(image, builder.name, split, i)
      if image_size:
        image = resize.resize_image(image, image_size)
      if images is None:
        images = np.empty((n,) + image.shape, np.uint8)
      if image.shape != images.shape[1:]:
        raise _different_shapes(builder, split, images.shape[1:], image.shape, i)
      images[i] = image
      if has_label:
        labels[i] = record[LABEL_KEY]
  if images is None:
    raise UserError(f"split {split!r} of {builder.name} in {builder.data_dir} is empty")
  return images, labels


def _read_with_tensorflow(builder, split: str, image_key: str, has_label: bool, image_size: int,
                          binary: bool):
  """Whole split of a tfrecord set through tf.data (TensorFlow is installed)."""
  arrays = tfds.as_numpy(builder.as_dataset(split=split))
  images, labels = [], []
  for i, example in enumerate(arrays):
    image = _as_hwc(np.asarray(example[image_key]))
    if binary:
      image = _binary_to_255(image, builder.name, split, i)
    images.append(resize.resize_image(image, image_size) if image_size else image)
    if images[-1].shape != images[0].shape:
      raise _different_shapes(builder, split, images[0].shape, images[-1].shape, i)
    labels.append(example[LABEL_KEY] if has_label else 0)
  if not images:
    raise UserError(f"split {split!r} of {builder.name} in {builder.data_dir} is empty")
  return np.stack(images).astype(np.uint8), np.asarray(labels, np.int32)


def _open(name: str, split: str, data_dir: str | None):
  """(builder, version_dir, image_key, has_label) of a prepared set, its split and features
  checked."""
  data_dir = resolve_data_dir(data_dir)
  version_dir = find_prepared(name, data_dir)
  builder = tfds.builder_from_directory(version_dir)
  if split not in builder.info.splits:
    raise UserError(f"data set {name!r} in {version_dir} has no split {split!r}: available "
                    f"splits: {', '.join(builder.info.splits)}")
  features = builder.info.features
  image_key = _image_key(features)
  if np.dtype(features[image_key].np_dtype) != np.uint8:
    raise UserError(f"images of {name!r} are {np.dtype(features[image_key].np_dtype)}: only "
                    f"uint8 images are supported")
  return builder, version_dir, image_key, LABEL_KEY in features


def _num_classes(features, has_label: bool, labels: np.ndarray) -> int:
  """ClassLabel's count; else max label + 1; 0 without labels ("unlabelled")."""
  if not has_label:
    return 0
  if isinstance(features[LABEL_KEY], tfds.features.ClassLabel):
    return features[LABEL_KEY].num_classes
  return int(labels.max(initial=-1)) + 1


def load(name: str, split: str, data_dir: str | None = None, image_size: int = 0):
  """(images uint8 [N, H, W, C], labels int32 [N], num_classes) of a prepared data set.

  image_size > 0: H = W = image_size (`genimg_jax.data.resize`, applied per image while reading).

  Without a `label` feature, labels are zeros and num_classes is 0 ("unlabelled"): a
  class-conditional model must refuse such a set rather than learn one fake class.
  """
  builder, version_dir, image_key, has_label = _open(name, split, data_dir)
  file_format = _file_format(version_dir)
  binary = is_binary_set(name)
  if file_format in RANDOM_ACCESS_FORMATS:
    images, labels = _read_random_access(builder, split, image_key, has_label, image_size, binary)
  elif _tensorflow_available():
    images, labels = _read_with_tensorflow(builder, split, image_key, has_label, image_size,
                                           binary)
  else:
    raise _needs_tensorflow(name, version_dir, file_format, data_dir)
  return images, labels, _num_classes(builder.info.features, has_label, labels)


def _needs_tensorflow(name: str, version_dir: str, file_format: str, data_dir) -> UserError:
  base = name.split(":")[0]
  data_dir = resolve_data_dir(data_dir)
  return UserError(f"data set {name!r} in {version_dir} is prepared as {file_format}, which "
                   f"needs TensorFlow to read: rebuild it with `tfds build {base} --data_dir "
                   f"{data_dir} --file_format=array_record` (offline: `python -m "
                   f"genimg_jax.prepare {base.split('/')[0]} --from DIR --data_dir {data_dir}`), "
                   f"or install tensorflow")


class RandomAccessSplit:
  """One split read record by record (streaming, `config.data_on_device=False`): `read(indices)`
  decodes (and with image_size resizes) just those records; nothing else is held in memory."""

  def __init__(self, name: str, split: str, data_dir: str | None = None, image_size: int = 0):
    builder, version_dir, self._image_key, self._has_label = _open(name, split, data_dir)
    file_format = _file_format(version_dir)
    if file_format not in RANDOM_ACCESS_FORMATS:
      raise UserError(f"data set {name!r} in {version_dir} is prepared as {file_format}, which "
                      f"cannot be streamed (no random access): rebuild it with `tfds build "
                      f"{name.split(':')[0]} --file_format=array_record`, or set "
                      f"--config.data_on_device=True")
    self._builder, self._split, self._image_size = builder, split, image_size
    self._binary = is_binary_set(name)
    feature = builder.info.features[self._image_key]
    self._encoded = isinstance(feature, tfds.features.Image) and feature.shape[-1] in PIL_MODES
    self._channels = feature.shape[-1]
    decoders = {self._image_key: tfds.decode.SkipDecoding()} if self._encoded else None
    self._source = builder.as_data_source(split=split, decoders=decoders)
    self.num_examples = len(self._source)
    if not self.num_examples:
      raise UserError(f"split {split!r} of {builder.name} in {builder.data_dir} is empty")
    self.image_shape = self.read([0])[0].shape[1:]  # Every later image must match it.
    labels = np.zeros(0, np.int32)
    if self._has_label and not isinstance(builder.info.features[LABEL_KEY],
                                          tfds.features.ClassLabel):
      labels = self.read(np.arange(self.num_examples))[1]  # Rare: a plain integer label.
    self.num_classes = _num_classes(builder.info.features, self._has_label, labels)

  def read(self, indices) -> tuple[np.ndarray, np.ndarray]:
    """Records `indices` (any order): (images uint8 [M, H, W, C], labels int32 [M])."""
    records = self._source.__getitems__([int(i) for i in indices])
    images, labels = [], np.zeros(len(records), np.int32)
    for j, record in enumerate(records):
      if self._encoded:
        image = _decode_image(record[self._image_key], self._channels)
      else:
        image = _as_hwc(np.asarray(record[self._image_key]))
      if self._binary:
        image = _binary_to_255(image, self._builder.name, self._split, int(indices[j]))
      if self._image_size:
        image = resize.resize_image(image, self._image_size)
      expected = getattr(self, "image_shape", None) or (images[0].shape if images else None)
      if expected is not None and image.shape != expected:
        raise _different_shapes(self._builder, self._split, expected, image.shape, int(indices[j]))
      images.append(image)
      if self._has_label:
        labels[j] = record[LABEL_KEY]
    return np.stack(images).astype(np.uint8, copy=False), labels
