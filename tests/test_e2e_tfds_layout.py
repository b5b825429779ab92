"""TFDS's own layout: `prepare mnist` is what TFDS's `mnist` builder reads, and a `cifar10/3.0.2`
array_record set (as `tfds build cifar10 --file_format=array_record` writes it) loads and trains."""

import io
import os
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from conftest import TINY_RUN, run_python
from genimg_jax.data import idx
from test_tfds_data import run_guarded, run_prepare_cli, write_idx

pytestmark = pytest.mark.slow

# Label names of TFDS's cifar10 (written from batches.meta.txt by its builder).
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
CIFAR_COUNTS = {"train": 12, "test": 5}
MNIST_COUNTS = {"train": 30, "test": 10}

# Reads sets through TFDS's registered builders only (`tfds.data_source`), with the network and
# every download path of TFDS blocked and recorded; writes arrays and a report.
DATA_SOURCE_SCRIPT = textwrap.dedent("""
    import socket
    _network = []
    def _no_network(*args, **kwargs):
      _network.append(repr(args[:2]))
      raise OSError("network blocked by test")
    socket.socket.connect = _no_network
    socket.create_connection = _no_network
    socket.getaddrinfo = _no_network
    import numpy as np
    import tensorflow_datasets as tfds
    _downloads = []
    def _refuse(what):
      def refuse(*args, **kwargs):
        _downloads.append(what)
        raise RuntimeError(f"{what} called: TFDS tried to download or prepare")
      return refuse
    tfds.core.DatasetBuilder.download_and_prepare = _refuse("download_and_prepare")
    for method in ("download", "download_and_extract", "extract", "download_kaggle_data"):
      setattr(tfds.download.DownloadManager, method, _refuse(f"DownloadManager.{method}"))
    out, data_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    arrays, failures = {}, {}
    for name in names:
      try:
        sources = tfds.data_source(name, data_dir=data_dir)
      except Exception as e:  # Recorded, so the test shows what TFDS did instead.
        failures[name] = f"{type(e).__name__}: {e}"
        continue
      builder = tfds.builder(name, data_dir=data_dir)
      arrays[f"{name}_builder_module"] = type(builder).__module__
      arrays[f"{name}_version"] = str(builder.info.version)
      for split, source in sources.items():
        records = [source[i] for i in range(len(source))]
        arrays[f"{name}_{split}_images"] = np.stack([r["image"] for r in records])
        arrays[f"{name}_{split}_labels"] = np.array([r["label"] for r in records])
    np.savez(out, **arrays)
    with open(out + ".json", "w") as f:
      json.dump({"network": _network, "downloads": _downloads, "failures": failures,
                 "tensorflow_in_sys_modules": "tensorflow" in sys.modules}, f)
""")


@pytest.fixture(scope="module")
def prepared_stock(tmp_path_factory):
  """A tiny IDX folder prepared as both `mnist` and `fashion_mnist` through the CLI."""
  root = tmp_path_factory.mktemp("stock")
  rng = np.random.default_rng(7)
  expected = {}
  (root / "idx").mkdir()
  for split, n in MNIST_COUNTS.items():
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    image_stem, label_stem = idx.IDX_FILES[split]
    write_idx(root / "idx" / f"{image_stem}.gz", images)
    write_idx(root / "idx" / f"{label_stem}.gz", labels)
    expected[split] = (images[..., None], labels)
  data_dir = root / "tfds"
  for name in ("mnist", "fashion_mnist"):
    proc, report = run_prepare_cli(root, name, "--from", root / "idx", "--data_dir", data_dir)
    assert proc.returncode == 0 and report == {"attempts": [], "loaded": []}, proc.stderr
  return {"root": root, "data_dir": data_dir, "expected": expected}


def test_tfds_data_source_reads_prepared_mnist_without_tensorflow_or_download(prepared_stock):
  """Acceptance 4: TFDS's registered `mnist` / `fashion_mnist` builders find our sets as
  prepared (version 3.0.1) and read every pixel and label; no TensorFlow, no network."""
  root, data_dir = prepared_stock["root"], prepared_stock["data_dir"]
  out = root / "data_source.npz"
  proc, tf_report = run_guarded(root, DATA_SOURCE_SCRIPT, out, data_dir, "mnist", "fashion_mnist")
  assert proc.returncode == 0, proc.stderr
  report = __import__("json").loads((root / "data_source.npz.json").read_text())
  assert report == {"network": [], "downloads": [], "failures": {},
                    "tensorflow_in_sys_modules": False}
  assert tf_report == {"attempts": [], "loaded": []}
  arrays = dict(np.load(out))
  for name in ("mnist", "fashion_mnist"):
    assert str(arrays[f"{name}_builder_module"]).startswith("tensorflow_datasets.")
    assert str(arrays[f"{name}_version"]) == "3.0.1"
    for split, (images, labels) in prepared_stock["expected"].items():
      np.testing.assert_array_equal(arrays[f"{name}_{split}_images"], images)
      np.testing.assert_array_equal(arrays[f"{name}_{split}_labels"], labels)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_prepared_features_and_splits_are_tfds_own(prepared_stock, tmp_path, name):
  """features.json of our set equals the features TFDS's builder declares in its own source."""
  ours = tfds.builder_from_directory(prepared_stock["data_dir"] / name / "3.0.1").info
  official = tfds.builder_cls(name)(data_dir=str(tmp_path)).info  # Code only: nothing is read.
  assert ours.features.to_json() == official.features.to_json()
  assert ours.features["label"].names == official.features["label"].names
  assert ours.features["image"].shape == official.features["image"].shape == (28, 28, 1)
  assert sorted(ours.splits) == ["test", "train"]
  assert {s: ours.splits[s].num_examples for s in ours.splits} == MNIST_COUNTS
  assert (ours.name, str(ours.version)) == (name, str(official.version))
  assert ours.file_format.value == "array_record"


def random_splits(rng) -> dict:
  """split → (images uint8 [n, 32, 32, 3], labels int64 [n]) of random CIFAR-shaped data."""
  return {split: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                  rng.integers(0, 10, n).astype(np.int64)) for split, n in CIFAR_COUNTS.items()}


class _Cifar10Layout(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """What `tfds build cifar10 --file_format=array_record` writes, in miniature: TFDS's cifar10
  name, version and features (tensorflow_datasets/image_classification/cifar.py), shuffled by
  key as TFDS does; PNG bytes come from Pillow as file objects, so no TensorFlow."""

  name = "cifar10"
  VERSION = tfds.core.Version("3.0.2")
  DATA = random_splits(np.random.default_rng(11))

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self, supervised_keys=("image", "label"),
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(),
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(names=CIFAR10_NAMES)}))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in CIFAR_COUNTS}

  def _generate_examples(self, split):
    images, labels = self.DATA[split]
    for i, (image, label) in enumerate(zip(images, labels)):
      png = io.BytesIO()
      Image.fromarray(image).save(png, format="PNG")
      png.seek(0)
      yield i, {"id": f"{split}_{i:05d}", "image": png, "label": label}


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
  """A TFDS data dir holding the tiny `cifar10/3.0.2` array_record set."""
  root = tmp_path_factory.mktemp("cifar")
  builder = _Cifar10Layout(data_dir=str(root / "tfds"), file_format="array_record")
  builder.download_and_prepare(download_dir=str(root / "downloads"))
  return root / "tfds"


def as_pairs(images, labels) -> list:
  """Order-free view of a split: sorted (pixel bytes, label) pairs (TFDS shuffles by key)."""
  return sorted((image.tobytes(), int(label)) for image, label in zip(images, labels))


def test_cifar10_layout_is_what_tfds_own_builder_reads(cifar10_dir, tmp_path):
  version_dir = cifar10_dir / "cifar10" / "3.0.2"
  assert sorted(p.name for p in version_dir.glob("*.array_record-*")) == [
      "cifar10-test.array_record-00000-of-00001", "cifar10-train.array_record-00000-of-00001"]
  official = tfds.builder_cls("cifar10")(data_dir=str(tmp_path)).info.features
  assert tfds.builder_from_directory(version_dir).info.features.to_json() == official.to_json()
  sources = tfds.data_source("cifar10", data_dir=str(cifar10_dir), download=False)
  for split, (images, labels) in _Cifar10Layout.DATA.items():
    records = [sources[split][i] for i in range(len(sources[split]))]
    assert sorted(r["id"] for r in records) == [f"{split}_{i:05d}".encode()
                                                for i in range(CIFAR_COUNTS[split])]
    assert as_pairs([r["image"] for r in records], [r["label"] for r in records]) == \
        as_pairs(images, labels)


LOAD_CIFAR = textwrap.dedent("""
    import numpy as np
    from genimg_jax.data import load_dataset
    out, data_dir = sys.argv[1:]
    arrays = {}
    for size in (0, 16):
      for split in ("train", "test"):
        d = load_dataset("cifar10", split, data_dir, image_size=size)
        arrays.update({f"{split}_{size}_images": d.images, f"{split}_{size}_labels": d.labels,
                       f"{split}_{size}_classes": d.num_classes})
    np.savez(out, **arrays)
""")


def test_load_dataset_reads_cifar10_layout_exactly_without_tensorflow(cifar10_dir, tmp_path):
  out = tmp_path / "cifar.npz"
  proc, report = run_guarded(tmp_path, LOAD_CIFAR, out, cifar10_dir)
  assert proc.returncode == 0, proc.stderr
  assert report == {"attempts": [], "loaded": []}
  arrays = dict(np.load(out))
  for split, (images, labels) in _Cifar10Layout.DATA.items():
    got_images, got_labels = arrays[f"{split}_0_images"], arrays[f"{split}_0_labels"]
    assert got_images.dtype == np.uint8 and got_images.shape == images.shape
    assert got_labels.dtype == np.int32
    assert as_pairs(got_images, got_labels) == as_pairs(images, labels)
    assert arrays[f"{split}_0_classes"] == arrays[f"{split}_16_classes"] == 10
    small = arrays[f"{split}_16_images"]  # Resized in reading order: same order as unresized.
    assert small.shape == (CIFAR_COUNTS[split], 16, 16, 3) and small.dtype == np.uint8
    np.testing.assert_array_equal(arrays[f"{split}_16_labels"], got_labels)
    for image, resized in zip(got_images, small):
      expected = Image.fromarray(image).resize((16, 16), Image.Resampling.BICUBIC)
      np.testing.assert_array_equal(resized, np.asarray(expected))


@pytest.mark.parametrize("image_size, tile", [(0, 32), (16, 16)])
def test_train_py_gan_on_cifar10_layout(cifar10_dir, tmp_path, image_size, tile):
  """`python train.py --model gan` on the cifar10 set, as is and at --config.image_size=16:
  the MLP GAN takes the loaded H×W×3, seen in the sample grid's tile size."""
  schedule = dict(TINY_RUN, num_grid_samples=4)  # A 2×2 grid, 2-pixel padding.
  flags = [f"--config.{k}={v}" for k, v in schedule.items()]
  result = run_python(["train.py", "--model", "gan", "--workdir", str(tmp_path / "run"),
                       "--config.dataset=cifar10", f"--config.data_dir={cifar10_dir}",
                       f"--config.image_size={image_size}", "--config.latent_dim=8",
                       "--config.generator_hidden=(16,)", "--config.discriminator_hidden=(16,)",
                       *flags])
  assert result.returncode == 0, result.stderr
  grid = np.asarray(Image.open(tmp_path / "run" / f"samples_{TINY_RUN['num_steps']}.png"))
  assert grid.shape == (2 * tile + 6, 2 * tile + 6, 3), grid.shape
  assert os.path.isdir(tmp_path / "run" / "checkpoints")
