"""Acceptance on real MNIST (../shared/data/mnist; skipped where absent): the project's
classifier reaches ≥ 99 % test accuracy, FID(train[:10k], test) < 1 in its space, and FID ranks
the sanity sets test-like < blurred < shuffled pixels < noise, in every space available."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, subprocess_env
from tests.mnist_sanity_sets import ranked_fids, sanity_sets

MNIST_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "mnist")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir(MNIST_DIR),
                                 reason=f"real MNIST IDX files not found in {MNIST_DIR}")]


@pytest.fixture(scope="module")
def mnist():
  from genimg_jax.data.idx import read_idx_split

  return read_idx_split(MNIST_DIR, "train"), read_idx_split(MNIST_DIR, "test")


# Trains the classifier as a user's run does, in a child with XLA's default compiler settings,
# not the suite's cheaper ones (tests/conftest.py): the trained weights move with the compiler's
# rounding, and with them this FID (0.87 here; 1.02 under the suite's -O1 flags).
CLASSIFIER_CHILD = r"""
import json, sys
from genimg_jax.data.idx import read_idx_split
from genimg_jax.evaluation import classifier as classifier_lib
from tests.mnist_sanity_sets import ranked_fids, sanity_sets
(train_images, train_labels), (test_images, test_labels) = (
    read_idx_split(sys.argv[3], "train"), read_idx_split(sys.argv[3], "test"))
classifier = classifier_lib.get_classifier(
    "mnist", sys.argv[1], data=(train_images, train_labels, test_images, test_labels, 10))
fids = ranked_fids(classifier, sanity_sets(train_images), test_images)
json.dump({"accuracy": float(classifier.test_accuracy), "fids": fids}, open(sys.argv[2], "w"))
"""


def test_classifier_accuracy_and_fid_of_real_data(tmp_path):
  env = dict(subprocess_env(), XLA_FLAGS="")
  result = subprocess.run([sys.executable, "-c", CLASSIFIER_CHILD, str(tmp_path / "cache"),
                           str(tmp_path / "out.json"), MNIST_DIR], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / "out.json") as f:
    out = json.load(f)
  assert out["accuracy"] >= 0.99, out  # 99.24 % measured.
  fids = out["fids"]
  print("FID vs MNIST test in the classifier space:", fids)
  assert fids["train[:10k]"] < 1.0, fids  # 0.87 measured.
  values = list(fids.values())
  assert values == sorted(values), fids


def test_sanity_ranking_in_the_inception_space(mnist):
  """test-like < blurred < {shuffled pixels, uniform noise}, each step far apart.

  Inception-v3 puts uniform noise slightly *closer* to MNIST than shuffled pixels, so the last
  pair is not ordered here (docs/evaluation.md): measured 422.3 vs 432.5 at 300 images a set,
  417.7 vs 427.1 at 500 (torch running default_1.pt behind Pillow, clean-fid's own pipeline,
  gives the same to 0.01) and 411.6 vs 423.8 at 2,000. Not a finite-sample effect: the gap
  holds at every count.
  """
  weights = os.environ.get("GENIMG_INCEPTION_WEIGHTS", "")
  if not os.path.isfile(weights):
    pytest.skip("set GENIMG_INCEPTION_WEIGHTS to an inception-2015-12-05.pt to rank in the "
                "Inception space")
  value = os.environ.get("GENIMG_INCEPTION_RANKING", "0") or "0"
  if not value.isdigit() or 0 < int(value) < 100:  # "1" meant "on" before it meant a count.
    pytest.fail(f"GENIMG_INCEPTION_RANKING={value!r}: give the images per set, at least 100 "
                f"(e.g. 2000); FID of 2048-d features needs that many")
  count = int(value)
  if count == 0:
    pytest.skip("set GENIMG_INCEPTION_RANKING=N (images per set, e.g. 2000) to run the "
                "Inception-space ranking: 5·N images through Inception-v3, ~N/160 CPU-minutes")
  from genimg_jax.evaluation.features import InceptionSpace

  (train_images, _), (test_images, _) = mnist
  sets = {k: v[:count] for k, v in sanity_sets(train_images).items()}
  fids = ranked_fids(InceptionSpace(weights), sets, test_images[:count])
  print(f"FID vs MNIST test[:{count}] in the Inception space ({count} samples):", fids)
  destroyed = min(fids["shuffled pixels"], fids["uniform noise"])
  # 2,000 a set: 9.1 < 77.2 < 411.6; a factor of 3 leaves room for the bias at small counts.
  assert 3 * fids["train[:10k]"] < fids["blurred"] and 3 * fids["blurred"] < destroyed, fids
