"""Prepare a TFDS-format data set from local files: no network, no TensorFlow.

  python -m genimg_jax.prepare mnist --from ../shared/data/mnist [--data_dir D]
  python -m genimg_jax.prepare my_faces --from DIR     # DIR/<class>/*.png, or DIR/train/...
  python -m genimg_jax.prepare binarized_mnist --from ../shared/data/binarized_mnist

Writes `D/NAME/VERSION` in the array_record layout `tfds build NAME --file_format=array_record`
writes (PNG `Image` and `ClassLabel` features), readable by name through `load_dataset`.
mnist and fashion_mnist get TFDS's own version 3.0.1, so `tfds.data_source('mnist',
data_dir=D)` reads them too; other sets are version 1.0.0. binarized_mnist is read from
Larochelle's three `.amat` files, each checked against TFDS's published SHA-256, and written as
TFDS's own `binarized_mnist/1.0.0` (splits train, validation, test; 0/1 pixels; no labels).
"""

import argparse
import os
import sys
import tempfile
import time

from genimg_jax.errors import exit_on_user_error


def _parse(argv):
  parser = argparse.ArgumentParser(
      prog="python -m genimg_jax.prepare", description=__doc__.splitlines()[0])
  parser.add_argument("name", help="data set name, e.g. mnist, fashion_mnist, my_faces")
  parser.add_argument("--from", dest="source", required=True,
                      help="folder with the IDX files, the .amat files (binarized_mnist), or an "
                           "image folder DIR/<class>/*.png")
  parser.add_argument("--data_dir", default=None,
                      help="TFDS data dir (default: $TFDS_DATA_DIR, else ~/tensorflow_datasets)")
  parser.add_argument("--overwrite", action="store_true",
                      help="prepare again when the data set is already there")
  return parser.parse_args(argv)


def _counts(counts: dict[str, int]) -> str:
  return ", ".join(f"{split} {n}" for split, n in counts.items())


@exit_on_user_error
def main(argv=None) -> None:
  args = _parse(argv)
  start = time.perf_counter()
  # Imported after parsing so `--help` and usage errors are instant.
  import tensorflow_datasets as tfds

  from genimg_jax.data import amat, prepare_builders, tfds_source

  data_dir = tfds_source.resolve_data_dir(args.data_dir)
  source_dir = os.path.expanduser(args.source)
  if args.name == amat.NAME:
    version = amat.VERSION
  else:
    version = prepare_builders.prepared_version(args.name, prepare_builders.is_idx_dir(source_dir))
  target = os.path.join(data_dir, args.name, version)
  if not args.overwrite and os.path.isfile(os.path.join(target, "dataset_info.json")):
    info = tfds.builder_from_directory(target).info
    counts = {split: info.splits[split].num_examples for split in info.splits}
    print(f"{args.name} is already prepared at {target} ({_counts(counts)}); "
          f"pass --overwrite to prepare it again")
    return
  if args.name == amat.NAME:
    source = amat.amat_source(source_dir)  # Always checked against the published SHA-256.
  else:
    source = prepare_builders.read_source(args.name, source_dir)
  tfds.disable_progress_bar()
  builder = prepare_builders.make_builder(args.name, source, data_dir)
  mode = tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS  # Overwrites the data set itself.
  with tempfile.TemporaryDirectory() as empty:  # Nothing is downloaded: keep D/ clean.
    builder.download_and_prepare(
        download_dir=empty,
        download_config=tfds.download.DownloadConfig(try_download_gcs=False, download_mode=mode))
  seconds = time.perf_counter() - start
  print(f"prepared {args.name} at {builder.data_dir}: {_counts(source.counts)} "
        f"({seconds:.1f} s)")


if __name__ == "__main__":
  main(sys.argv[1:])
