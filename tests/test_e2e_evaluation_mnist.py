"""Acceptance on real MNIST (../shared/data/mnist; skipped where absent): the project's
classifier reaches ≥ 99 % test accuracy, FID(train[:10k], test) < 1 in its space, and FID ranks
the sanity sets test-like < blurred < shuffled pixels < noise, in every space available."""

import os

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

MNIST_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "mnist")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir(MNIST_DIR),
                                 reason=f"real MNIST IDX files not found in {MNIST_DIR}")]


@pytest.fixture(scope="module")
def mnist():
  from genimg_jax.data.idx import read_idx_split

  return read_idx_split(MNIST_DIR, "train"), read_idx_split(MNIST_DIR, "test")


@pytest.fixture(scope="module")
def classifier(mnist, tmp_path_factory):
  from genimg_jax.evaluation import classifier as classifier_lib

  (train_images, train_labels), (test_images, test_labels) = mnist
  return classifier_lib.get_classifier(
      "mnist", str(tmp_path_factory.mktemp("cache")),
      data=(train_images, train_labels, test_images, test_labels, 10))


def _blur(images):
  """3×3 box blur (edge-padded), float [N, H, W, C]."""
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  h, w = images.shape[1:3]
  return sum(padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0


def _sanity_sets(train_images):
  rng = np.random.default_rng(0)
  real = train_images[:10_000].astype(np.float32) / 255.0
  flat = real.reshape(len(real), -1)
  shuffled = np.take_along_axis(flat, rng.permuted(np.tile(np.arange(flat.shape[1]),
                                                           (len(flat), 1)), axis=1), axis=1)
  return {"train[:10k]": real, "blurred": _blur(real),
          "shuffled pixels": shuffled.reshape(real.shape),
          "uniform noise": rng.uniform(size=real.shape).astype(np.float32)}


def _ranked_fids(space, sets, test_images):
  from genimg_jax.evaluation import fid as fid_lib

  reference = fid_lib.gaussian_stats(space(test_images.astype(np.float32) / 255.0))
  return {name: fid_lib.frechet_distance(reference, fid_lib.gaussian_stats(space(images)))
          for name, images in sets.items()}


def test_classifier_accuracy_and_fid_of_real_data(classifier, mnist):
  (train_images, _), (test_images, _) = mnist
  assert classifier.test_accuracy >= 0.99, classifier.test_accuracy  # 99.24 % measured.
  fids = _ranked_fids(classifier, _sanity_sets(train_images), test_images)
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
  sets = {k: v[:count] for k, v in _sanity_sets(train_images).items()}
  fids = _ranked_fids(InceptionSpace(weights), sets, test_images[:count])
  print(f"FID vs MNIST test[:{count}] in the Inception space ({count} samples):", fids)
  destroyed = min(fids["shuffled pixels"], fids["uniform noise"])
  # 2,000 a set: 9.1 < 77.2 < 411.6; a factor of 3 leaves room for the bias at small counts.
  assert 3 * fids["train[:10k]"] < fids["blurred"] and 3 * fids["blurred"] < destroyed, fids
