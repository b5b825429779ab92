"""Real data through TFDS: offline `prepare`, read back by name, no TensorFlow anywhere."""

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from genimg_jax import prepare
from genimg_jax.data import idx, load_dataset, placement, prepare_builders
from genimg_jax.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
NUM_TRAIN, NUM_TEST, NUM_CLASSES = 50, 20, 10
PETS = ("cat", "dog")  # Classes of the tiny image folder (8x8 RGB PNG).
PETS_PER_CLASS, PETS_SIZE = 3, 8
VERSIONS = {"mnist": "3.0.1", "pets": "1.0.0"}  # TFDS's own version for mnist; ours otherwise.

# Prelude of every subprocess: records and refuses any `import tensorflow` (also where it is
# installed) and writes a report at exit. etils probes `importlib.util.find_spec("tensorflow")`
# without importing; such probes are answered "not installed" and not counted.
TF_GUARD = textwrap.dedent("""
    import atexit, json, os, sys, traceback
    _attempts = []
    class _BlockTensorFlow:
      def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] != "tensorflow":
          return None
        probe = any(f.filename == "<frozen importlib.util>"
                    or f.filename.endswith(os.path.join("importlib", "util.py"))
                    for f in traceback.extract_stack())
        if probe:
          return None
        _attempts.append(name)
        raise ModuleNotFoundError(f"No module named {name!r} (blocked by test)", name=name)
    sys.meta_path.insert(0, _BlockTensorFlow())
    def _report():
      loaded = sorted(m for m in sys.modules if m.partition(".")[0] == "tensorflow")
      with open(os.environ["TF_REPORT"], "w") as f:
        json.dump({"attempts": _attempts, "loaded": loaded}, f)
    atexit.register(_report)
""")

LOAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from genimg_jax.data import load_dataset
    from genimg_jax.errors import exit_on_user_error
    @exit_on_user_error
    def main(out, data_dir, *names):
      arrays = {}
      for name in names:
        for split in ("train", "test"):
          if name == "pets" and split == "test":
            continue
          d = load_dataset(name, split, data_dir)
          arrays.update({f"{name}_{split}_images": d.images, f"{name}_{split}_labels": d.labels,
                         f"{name}_{split}_classes": d.num_classes})
      np.savez(out, **arrays)
    main(*sys.argv[1:])
""")


def run_guarded(tmp_path, body: str, *args) -> tuple[subprocess.CompletedProcess, dict]:
  """Runs `body` (Python) in a fresh interpreter under TF_GUARD; returns it and the report."""
  report = tmp_path / f"tf_report_{len(list(tmp_path.glob('tf_report_*')))}.json"
  env = dict(os.environ, TF_REPORT=str(report), PYTHONPATH=str(REPO_ROOT))
  proc = subprocess.run([sys.executable, "-c", TF_GUARD + body, *map(str, args)], cwd=REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=120)
  return proc, json.loads(report.read_text())


def run_prepare_cli(tmp_path, *args):
  body = "import runpy; sys.argv = ['prepare', *sys.argv[1:]]\n" \
         "runpy.run_module('genimg_jax.prepare', run_name='__main__')\n"
  return run_guarded(tmp_path, body, *args)


def write_idx(path: Path, array: np.ndarray) -> None:
  """IDX file: zero bytes, type 0x08 (uint8), ndim, big-endian uint32 dims, data; gzip'd."""
  header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  """A tiny IDX folder (random pixels) and a tiny two-class image folder, with their arrays."""
  root = tmp_path_factory.mktemp("sources")
  rng = np.random.default_rng(0)
  expected = {}
  idx_dir = root / "idx"
  idx_dir.mkdir()
  for split, n in (("train", NUM_TRAIN), ("test", NUM_TEST)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.uint8)
    image_stem, label_stem = idx.IDX_FILES[split]
    write_idx(idx_dir / f"{image_stem}.gz", images)
    write_idx(idx_dir / f"{label_stem}.gz", labels)
    expected[f"mnist_{split}"] = (images[..., None], labels.astype(np.int32))
  folder = root / "pets"
  pets, pet_labels = [], []
  for label, cls in enumerate(PETS):
    (folder / cls).mkdir(parents=True)
    for i in range(PETS_PER_CLASS):
      image = rng.integers(0, 256, (PETS_SIZE, PETS_SIZE, 3), dtype=np.uint8)
      Image.fromarray(image).save(folder / cls / f"{i:02d}.png")
      pets.append(image)
      pet_labels.append(label)
  expected["pets_train"] = (np.stack(pets), np.array(pet_labels, np.int32))
  return {"idx": idx_dir, "pets": folder, "root": root, "expected": expected}


@pytest.fixture(scope="module")
def prepared(sources, tmp_path_factory):
  """Both sets prepared through the CLI and read back through `load_dataset`, all in
  subprocesses that refuse TensorFlow; returns the data dir, CLI outputs and arrays."""
  tmp = tmp_path_factory.mktemp("prepared")
  data_dir = tmp / "tfds"
  cli = {name: run_prepare_cli(tmp, name, "--from", sources[name_src], "--data_dir", data_dir)
         for name, name_src in (("mnist", "idx"), ("pets", "pets"))}
  load = run_guarded(tmp, LOAD_SCRIPT, tmp / "loaded.npz", data_dir, "mnist", "pets")
  arrays = dict(np.load(tmp / "loaded.npz")) if load[0].returncode == 0 else {}
  return {"data_dir": data_dir, "cli": cli, "load": load, "arrays": arrays}


def test_prepare_cli_prints_one_line_and_never_imports_tensorflow(prepared):
  for name, counts in (("mnist", f"train {NUM_TRAIN}, test {NUM_TEST}"),
                       ("pets", f"train {len(PETS) * PETS_PER_CLASS}")):
    proc, report = prepared["cli"][name]
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    path = prepared["data_dir"] / name / VERSIONS[name]
    assert len(lines) == 1 and lines[0].startswith(f"prepared {name} at {path}: {counts} (")
    assert lines[0].endswith(" s)")
    assert report == {"attempts": [], "loaded": []}


def test_load_dataset_round_trips_pixels_and_labels_without_tensorflow(prepared, sources):
  proc, report = prepared["load"]
  assert proc.returncode == 0, proc.stderr
  assert report == {"attempts": [], "loaded": []}
  arrays = prepared["arrays"]
  for key, (images, labels) in sources["expected"].items():
    assert arrays[f"{key}_images"].dtype == np.uint8
    assert arrays[f"{key}_labels"].dtype == np.int32
    np.testing.assert_array_equal(arrays[f"{key}_images"], images)  # Same order too.
    np.testing.assert_array_equal(arrays[f"{key}_labels"], labels)
  assert arrays["mnist_train_classes"] == NUM_CLASSES
  assert arrays["pets_train_classes"] == len(PETS)


def test_prepared_sets_keep_class_names_and_do_not_register_builders(prepared):
  info = tfds.builder_from_directory(prepared["data_dir"] / "pets" / VERSIONS["pets"]).info
  assert info.features["label"].names == list(PETS)
  assert isinstance(info.features["image"], tfds.features.Image)  # PNG, as `tfds build` writes.
  assert info.features["image"].shape == (PETS_SIZE, PETS_SIZE, 3)
  assert tfds.builder_cls("mnist").__module__.startswith("tensorflow_datasets.")


def test_fashion_mnist_class_names():
  names = prepare_builders.IDX_CLASS_NAMES["fashion_mnist"]
  assert names[0] == "T-shirt/top" and names[9] == "Ankle boot" and len(names) == 10


def test_not_prepared_gives_both_commands(tmp_path):
  with pytest.raises(UserError) as e:
    load_dataset("mnist", "train", str(tmp_path))
  message = str(e.value)
  assert "\n" not in message and str(tmp_path) in message
  assert f"tfds build mnist --data_dir {tmp_path} --file_format=array_record" in message
  assert f"python -m genimg_jax.prepare mnist --from DIR --data_dir {tmp_path}" in message


def test_data_dir_defaults_to_tfds_data_dir_env(prepared, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(prepared["data_dir"]))
  assert load_dataset("pets", "train").images.shape == (6, PETS_SIZE, PETS_SIZE, 3)


def test_unknown_name_and_unknown_split(prepared):
  with pytest.raises(UserError, match=r"^unknown data set 'no_such_set_xyz': it is not a TFDS"):
    load_dataset("no_such_set_xyz", "train", str(prepared["data_dir"]))
  with pytest.raises(UserError, match=r"has no split 'test': available splits: train$"):
    load_dataset("pets", "test", str(prepared["data_dir"]))


def test_tfrecord_set_without_tensorflow_says_how_to_rebuild(prepared, tmp_path):
  data_dir = tmp_path / "tfds"
  version = VERSIONS["mnist"]
  shutil.copytree(prepared["data_dir"] / "mnist", data_dir / "mnist")
  info_path = data_dir / "mnist" / version / "dataset_info.json"
  info = json.loads(info_path.read_text())
  info["fileFormat"] = "tfrecord"
  info_path.write_text(json.dumps(info))
  body = "from genimg_jax.data import load_dataset\n" \
         "from genimg_jax.errors import exit_on_user_error\n" \
         "exit_on_user_error(load_dataset)('mnist', 'train', sys.argv[1])\n"
  proc, report = run_guarded(tmp_path, body, data_dir)
  assert proc.returncode == 2 and "Traceback" not in proc.stderr
  assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: data set 'mnist'")
  assert "prepared as tfrecord" in proc.stderr
  assert f"tfds build mnist --data_dir {data_dir} --file_format=array_record" in proc.stderr
  assert report["loaded"] == []


def test_mixed_sizes_prepare_and_load_only_with_image_size(tmp_path):
  """A folder of differently sized images prepares (shape None x None); loading it says to pass
  --config.image_size=N, and with image_size every image is cropped and resized (labels kept)."""
  rng = np.random.default_rng(3)
  sizes = {"a": [(6, 4), (5, 7)], "b": [(4, 4)]}  # (height, width) per image, per class.
  originals = []
  for cls, shapes in sizes.items():
    (tmp_path / "mixed" / cls).mkdir(parents=True)
    for i, shape in enumerate(shapes):
      originals.append(rng.integers(0, 256, shape + (3,), dtype=np.uint8))
      Image.fromarray(originals[-1]).save(tmp_path / "mixed" / cls / f"{i}.png")
  data_dir = tmp_path / "tfds"
  proc, report = run_prepare_cli(tmp_path, "mixed", "--from", tmp_path / "mixed",
                                 "--data_dir", data_dir)
  assert proc.returncode == 0 and report == {"attempts": [], "loaded": []}, proc.stderr
  info = tfds.builder_from_directory(data_dir / "mixed" / VERSIONS["pets"]).info
  assert info.features["image"].shape == (None, None, 3)
  with pytest.raises(UserError, match=r"have different shapes .* pass --config\.image_size=N"):
    load_dataset("mixed", "train", str(data_dir))
  data = load_dataset("mixed", "train", str(data_dir), image_size=3)
  assert data.images.shape == (3, 3, 3, 3) and data.images.dtype == np.uint8
  np.testing.assert_array_equal(data.labels, [0, 0, 1])
  assert data.num_classes == 2
  for got, original in zip(data.images, originals):  # Pillow on the centre square, directly.
    h, w = original.shape[:2]
    s = min(h, w)
    square = original[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    expected = Image.fromarray(square).resize((3, 3), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(got, np.asarray(expected))


@pytest.mark.parametrize("case, message", [
    ("missing", "source folder not found"),
    ("empty", "no IDX files"),
    ("empty_class", "has no images"),
    ("missing_idx", "t10k-images-idx3-ubyte[.gz] not found"),
    ("not_an_image", "cannot read image"),
    ("bad_name", "is not valid"),
])
def test_prepare_rejects_bad_inputs(sources, tmp_path, case, message):
  name, source = "things", tmp_path / case
  if case == "empty":
    source.mkdir()
  elif case == "empty_class":
    (source / "a").mkdir(parents=True)
  elif case == "missing_idx":
    shutil.copytree(sources["idx"], source)
    next(source.glob("t10k-images*")).unlink()
  elif case == "not_an_image":
    (source / "a").mkdir(parents=True)
    (source / "a" / "x.png").write_text("not a png")
  elif case == "bad_name":
    name, source = "Bad-Name", sources["pets"]
  with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
    prepare_builders.read_source(name, str(source))


def test_split_folders_and_unlabelled_images(tmp_path, capsys):
  rng = np.random.default_rng(1)
  for split, n in (("train", 3), ("test", 2)):
    for cls in ("a", "b"):
      (tmp_path / "split" / split / cls).mkdir(parents=True)
      for i in range(n):
        Image.fromarray(rng.integers(0, 256, (4, 5), dtype=np.uint8)).save(
            tmp_path / "split" / split / cls / f"{i}.png")
  (tmp_path / "loose").mkdir()
  loose = rng.integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
  for i, image in enumerate(loose):
    Image.fromarray(image).save(tmp_path / "loose" / f"{i}.png")
  data_dir = str(tmp_path / "tfds")
  for name in ("split", "loose"):
    prepare.main([name, "--from", str(tmp_path / name), "--data_dir", data_dir])
  assert "train 6, test 4" in capsys.readouterr().out
  test = load_dataset("split", "test", data_dir)
  assert test.images.shape == (4, 4, 5, 1) and test.num_classes == 2  # Grey: one channel.
  np.testing.assert_array_equal(test.labels, [0, 0, 1, 1])
  unlabelled = load_dataset("loose", "train", data_dir)
  np.testing.assert_array_equal(unlabelled.images, loose)
  assert unlabelled.num_classes == 0 and not unlabelled.labels.any()


class _TinyImageFeatureSet(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """An `Image`-feature set like `tfds build` writes (PNG via Pillow: no TensorFlow)."""

  name = "tiny_image_feature"
  VERSION = tfds.core.Version("3.0.0")
  IMAGES = np.random.default_rng(2).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, disable_shuffling=True,
                                 features=tfds.features.FeaturesDict({
                                     "image": tfds.features.Image(shape=(6, 7, 3)),
                                     "label": tfds.features.ClassLabel(num_classes=3)}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i, image in enumerate(self.IMAGES):
      yield i, {"image": Image.fromarray(image), "label": i % 3}


def test_reads_image_feature_sets(tmp_path):
  builder = _TinyImageFeatureSet(data_dir=str(tmp_path), file_format="array_record")
  builder.download_and_prepare(download_dir=str(tmp_path / "dl"))
  data = load_dataset("tiny_image_feature", "train", str(tmp_path))
  np.testing.assert_array_equal(data.images, _TinyImageFeatureSet.IMAGES)
  np.testing.assert_array_equal(data.labels, np.arange(5) % 3)
  assert data.num_classes == 3


class _FakeDevice:
  platform = "gpu"

  def __init__(self, stats):
    self._stats = stats

  def memory_stats(self):
    return self._stats

  def __str__(self):
    return "cuda:0"


def test_check_fits_on_device():
  gib = 2**30
  device = _FakeDevice({"bytes_limit": 4 * gib, "bytes_in_use": gib})
  placement.check_fits_on_device(3 * gib, device)
  with pytest.raises(UserError, match=r"^the data set needs 3\.50 GiB on cuda:0 but only "
                                      r"3\.00 GiB is free there"):
    placement.check_fits_on_device(int(3.5 * gib), device)
  placement.check_fits_on_device(10**15, _FakeDevice(None))  # Unknown: no check.
  cpu = _FakeDevice(None)
  cpu.platform = "cpu"
  with pytest.raises(UserError, match="GiB is free there"):
    placement.check_fits_on_device(10**15, cpu)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason=f"real MNIST not found at {REAL_MNIST} "
                    "(../shared/data/mnist is only on the project's own machines)")
def test_real_mnist_prepares_and_reads_back(tmp_path):
  data_dir = str(tmp_path)
  prepare.main(["mnist", "--from", str(REAL_MNIST), "--data_dir", data_dir])
  for split, count in (("train", 60000), ("test", 10000)):
    data = load_dataset("mnist", split, data_dir)
    images, labels = idx.read_idx_split(str(REAL_MNIST), split)
    assert data.images.shape == (count, 28, 28, 1) and data.num_classes == 10
    np.testing.assert_array_equal(np.bincount(data.labels), np.bincount(labels))
    np.testing.assert_array_equal(data.images, images)


@pytest.mark.slow
def test_train_py_trains_on_prepared_sets(prepared, tmp_path):
  """The ordinary train.py path: an RGB image-folder set for the GAN, IDX MNIST for the VAE."""
  from conftest import run_python

  gan_dir, vae_dir = tmp_path / "gan", tmp_path / "vae"
  tiny = ["--config.num_steps=4", "--config.batch_size=4", "--config.log_every=2",
          "--config.steps_per_dispatch=2", "--config.num_grid_samples=4",
          f"--config.data_dir={prepared['data_dir']}"]
  gan = run_python(["train.py", "--model", "gan", "--workdir", str(gan_dir),
                    "--config.dataset=pets", "--config.generator_hidden=(16,)",
                    "--config.discriminator_hidden=(16,)", *tiny])
  assert gan.returncode == 0, gan.stderr
  grid = np.asarray(Image.open(gan_dir / "samples_4.png"))
  # 4 RGB tiles of PETS_SIZE² in a 2×2 grid with 2-pixel padding.
  assert grid.shape == (2 * PETS_SIZE + 6, 2 * PETS_SIZE + 6, 3), grid.shape
  vae = run_python(["train.py", "--model", "vae", "--workdir", str(vae_dir),
                    "--config.dataset=mnist", "--config.num_recon=4", *tiny])
  assert vae.returncode == 0, vae.stderr
  assert "test_neg_elbo" in vae.stdout, vae.stdout


@pytest.mark.slow
def test_vae_on_a_set_without_test_split_fails_before_training(prepared, tmp_path):
  """The VAE evaluates on the test split: its absence is one line at start-up, not mid-run."""
  from conftest import run_python

  workdir = tmp_path / "vae"
  result = run_python(["train.py", "--model", "vae", "--workdir", str(workdir),
                       "--config.dataset=pets", f"--config.data_dir={prepared['data_dir']}",
                       "--config.batch_size=4", "--config.num_steps=4"])
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "no split 'test'" in lines[0], result.stderr
  assert not (workdir / "checkpoints").exists() or not os.listdir(workdir / "checkpoints")
