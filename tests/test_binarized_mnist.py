"""binarized_mnist: `prepare` from Larochelle's `.amat` files (checksums verified) into TFDS's own
layout, read back by `tfds.data_source` and `load_dataset` as 0/255 pixels, split validation."""

import gzip
import hashlib
import os
import textwrap
from pathlib import Path

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import TINY_RUN, run_python
from genimg_jax import errors, prepare
from genimg_jax.data import amat, idx, load_dataset, load_split
from genimg_jax.errors import UserError
from test_tfds_data import run_guarded, write_idx

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


def test_round_trip_through_tfds_data_source_and_load_dataset(amat_dir, tmp_path, capsys,
                                                              monkeypatch):
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
  """One changed byte in a plain file: non-zero exit, one line naming it, nothing written."""
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


def test_truncated_gzip_file_is_one_line_naming_it(amat_dir, tmp_path, capsys, monkeypatch):
  directory, _ = amat_dir
  gzipped = directory / (amat.FILES["train"] + ".gz")
  gzipped.write_bytes(gzipped.read_bytes()[:-20])
  code, out, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                           "--data_dir", tmp_path / "tfds")
  assert code not in (0, None) and out == ""
  assert err.count("\n") == 1 and str(gzipped) in err and "truncated" in err, err


@pytest.mark.parametrize("line, found", [
    ("0 " * 782 + "0", "found 783 values"),
    ("0 " * 783 + "2", "values other than 0/1"),
    ("0," * 783 + "1", "found 1 values"),
])
def test_malformed_line_is_one_line_naming_file_and_line(amat_dir, tmp_path, capsys, monkeypatch,
                                                         line, found):
  """A line that is not 784 space-separated 0/1 values (its file's digest matching, so the line
  check itself is what refuses it) names the file and the line."""
  directory, bits = amat_dir
  text = amat_text(bits["validation"]).split(b"\n")
  text[1] = line.encode()  # Line 2 of the file.
  path = write_amat(directory, "validation", b"\n".join(text))
  monkeypatch.setitem(amat.SHA256, "validation", hashlib.sha256(b"\n".join(text)).hexdigest())
  code, out, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                           "--data_dir", tmp_path / "tfds")
  assert code not in (0, None) and out == ""
  assert err.count("\n") == 1 and f"{path} line 2:" in err and found in err, err


def test_other_spacing_and_line_endings_are_read(amat_dir, tmp_path, capsys, monkeypatch):
  """CRLF line endings, doubled spaces and a trailing blank line (what numpy.loadtxt, TFDS's
  reader, accepts) give the same bits."""
  directory, bits = amat_dir
  text = amat_text(bits["test"]).replace(b" ", b"  ").replace(b"\n", b" \r\n") + b"\n"
  write_amat(directory, "test", text)
  monkeypatch.setitem(amat.SHA256, "test", hashlib.sha256(text).hexdigest())
  code, _, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                         "--data_dir", tmp_path / "tfds")
  assert code == 0, err
  data = load_dataset("binarized_mnist", "test", str(tmp_path / "tfds"))
  np.testing.assert_array_equal(data.images, 255 * bits["test"])


def test_missing_file_is_one_line(amat_dir, tmp_path, capsys, monkeypatch):
  directory, _ = amat_dir
  (directory / amat.FILES["validation"]).unlink()
  code, _, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                         "--data_dir", tmp_path / "tfds")
  assert code not in (0, None) and err.count("\n") == 1
  assert "binarized_mnist_valid.amat[.gz] not found in" in err, err


def test_published_checksums_are_tfds_own():
  """The digests the CLI checks are those in the installed tensorflow-datasets' checksums.tsv."""
  tsv = Path(tfds.__file__).parent / "datasets" / "binarized_mnist" / "checksums.tsv"
  if not tsv.is_file():
    pytest.skip(f"{tsv} is not in this tensorflow-datasets version")
  published = {}
  for row in tsv.read_text().splitlines():
    if row.strip() and not row.startswith("#"):
      _, size, digest, filename = row.split("\t")
      published[filename] = (digest, int(size))
  assert {amat.FILES[s]: amat.SHA256[s] for s in amat.FILES} == \
      {name: digest for name, (digest, _) in published.items()}
  # 784 "d " pairs per line: the published sizes are 1,568 bytes per image.
  assert {name: size // 1568 for name, (_, size) in published.items()} == {
      amat.FILES["train"]: 50_000, amat.FILES["validation"]: 10_000, amat.FILES["test"]: 10_000}


@pytest.fixture
def prepared(amat_dir, tmp_path, capsys, monkeypatch):
  """The tiny set prepared through the CLI: (data dir, bits per split)."""
  directory, bits = amat_dir
  data_dir = tmp_path / "tfds"
  code, _, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                         "--data_dir", data_dir)
  assert code == 0, err
  return data_dir, bits


def test_features_and_version_are_tfds_own(prepared, tmp_path):
  """What prepare writes is what TFDS's own binarized_mnist builder declares (its source code)."""
  data_dir, _ = prepared
  ours = tfds.builder_from_directory(str(data_dir / "binarized_mnist" / amat.VERSION)).info
  official = tfds.builder_cls("binarized_mnist")(data_dir=str(tmp_path / "empty")).info
  assert ours.features.to_json() == official.features.to_json()
  assert (ours.name, str(ours.version)) == ("binarized_mnist", str(official.version))
  assert {s: ours.splits[s].num_examples for s in ours.splits} == COUNTS
  assert ours.file_format.value == "array_record"


def test_pixels_reach_the_network_as_0_1(prepared):
  """load_split (the loop's call, validation included) and the streamed reader both give 0/255,
  which the step's scale_images turns into exactly the stored bits."""
  from genimg_jax.data import batching, streaming

  data_dir, bits = prepared
  config = ml_collections.ConfigDict(dict(dataset="binarized_mnist", data_dir=str(data_dir),
                                          image_size=0, binarize="none", seed=0))
  validation = load_split(config, "validation")
  np.testing.assert_array_equal(batching.scale_images(validation.images, (0.0, 1.0)),
                                bits["validation"])
  stream = streaming.open_split("binarized_mnist", "train", str(data_dir))
  assert (stream.num_examples, stream.image_shape, stream.num_classes) == (6, (28, 28, 1), 0)
  images, _ = stream.read([4, 0, 4])
  np.testing.assert_array_equal(images, 255 * bits["train"][[4, 0, 4]])


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_binarize_on_a_binary_set_is_refused(prepared, mode):
  data_dir, _ = prepared
  config = ml_collections.ConfigDict(dict(dataset="binarized_mnist", data_dir=str(data_dir),
                                          image_size=0, binarize=mode, seed=0))
  with pytest.raises(UserError, match=f"binarize='{mode}'.*second time"):
    load_split(config, "train")


def test_validation_split_of_a_set_without_one_is_one_line(tmp_path, capsys, monkeypatch):
  """The embedded default and a prepared mnist have train and test only."""
  with pytest.raises(UserError, match=r"^data set 'mnist_embedded' has no validation split: "):
    load_dataset("mnist_embedded", "validation")
  for split, n in (("train", 4), ("test", 2)):
    image_stem, label_stem = idx.IDX_FILES[split]
    write_idx(tmp_path / f"{image_stem}.gz", np.zeros((n, 28, 28), np.uint8))
    write_idx(tmp_path / f"{label_stem}.gz", np.zeros(n, np.uint8))
  code, _, err = run_cli(capsys, monkeypatch, "mnist", "--from", tmp_path, "--data_dir",
                         tmp_path / "tfds")
  assert code == 0, err
  with pytest.raises(UserError, match=r"'mnist' .*has no split 'validation': available splits: "
                                      r"train, test$"):
    load_dataset("mnist", "validation", str(tmp_path / "tfds"))


DATA_SOURCE_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow_datasets as tfds
    out, data_dir = sys.argv[1:]
    sources = tfds.data_source("binarized_mnist", data_dir=data_dir)
    arrays = {split: np.stack([source[i]["image"] for i in range(len(source))])
              for split, source in sources.items()}
    arrays["keys"] = np.array(sorted({k for s in sources.values() for k in s[0]}))
    np.savez(out, **arrays)
""")


def test_tfds_data_source_reads_it_without_tensorflow(prepared, tmp_path):
  """TFDS's registered builder reads the prepared set in a fresh interpreter where any import of
  TensorFlow is refused and recorded."""
  data_dir, bits = prepared
  out = tmp_path / "data_source.npz"
  proc, report = run_guarded(tmp_path, DATA_SOURCE_SCRIPT, out, data_dir)
  assert proc.returncode == 0, proc.stderr
  assert report == {"attempts": [], "loaded": []}
  arrays = dict(np.load(out))
  assert list(arrays.pop("keys")) == ["image"]
  assert sorted(arrays) == sorted(COUNTS)
  for split, images in arrays.items():
    np.testing.assert_array_equal(images, bits[split])


@pytest.mark.slow
def test_train_py_vae_on_binarized_mnist(amat_dir, tmp_path, capsys, monkeypatch):
  """`train.py --model vae` trains and scores on a tiny prepared set; config.binarize on it is
  one line."""
  directory, bits = amat_dir
  rng = np.random.default_rng(5)
  bits["train"] = (rng.random((32, 28, 28, 1)) < 0.13).astype(np.uint8)  # Four batches of 8.
  text = amat_text(bits["train"])
  write_amat(directory, "train", text)
  monkeypatch.setitem(amat.SHA256, "train", hashlib.sha256(text).hexdigest())
  data_dir = tmp_path / "tfds"
  code, _, err = run_cli(capsys, monkeypatch, "binarized_mnist", "--from", directory,
                         "--data_dir", data_dir)
  assert code == 0, err
  flags = [f"--config.{k}={v}" for k, v in TINY_RUN.items()] + [
      "--config.dataset=binarized_mnist", f"--config.data_dir={data_dir}",
      "--config.latent_dim=4", "--config.encoder_hidden=(16,)", "--config.decoder_hidden=(16,)",
      "--config.num_recon=2", "--config.eval_batch_size=2"]
  workdir = tmp_path / "run"
  result = run_python(["train.py", "--model", "vae", "--workdir", str(workdir), *flags])
  assert result.returncode == 0, result.stderr
  assert "test_neg_elbo" in result.stdout and os.path.isdir(workdir / "checkpoints")
  refused = run_python(["train.py", "--model", "vae", "--workdir", str(tmp_path / "b"), *flags,
                        "--config.binarize=dynamic"])
  lines = refused.stderr.strip().splitlines()
  assert refused.returncode != 0 and len(lines) == 1, refused.stderr
  assert "already binary" in lines[0] and "second time" in lines[0]


@pytest.mark.slow
def test_real_larochelle_files(tmp_path):
  """The shared original files pass the published checksums and load as 50,000 / 10,000 /
  10,000 images of 0/255 with about 13% of the pixels on (MNIST's ink)."""
  if not SHARED.is_dir():
    pytest.skip(f"{SHARED} is absent (a fresh clone has no ../shared/data): nothing to check")
  from test_tfds_data import run_prepare_cli

  data_dir = tmp_path / "tfds"
  proc, report = run_prepare_cli(tmp_path, "binarized_mnist", "--from", SHARED,
                                 "--data_dir", data_dir)
  assert proc.returncode == 0, proc.stderr
  assert report == {"attempts": [], "loaded": []}
  assert "train 50000, validation 10000, test 10000" in proc.stdout
  for split, n in {"train": 50_000, "validation": 10_000, "test": 10_000}.items():
    data = load_dataset("binarized_mnist", split, str(data_dir))
    assert data.images.shape == (n, 28, 28, 1) and data.images.dtype == np.uint8
    assert set(np.unique(data.images)) == {0, 255}
    assert 0.11 < np.mean(data.images == 255) < 0.15, split
