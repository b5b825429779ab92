"""Sample scores by class: a conditional toy generator scored by the toy classifier, right and
wrong labels."""

import os

import jax
import numpy as np
import pytest

from genimg_jax.evaluation import interpolation
from genimg_jax.evaluation import samples as samples_lib
from tests.evaluation_support import ToyFamily, resolved_config, toy_splits


def test_conditional_samples_are_scored_by_class(toy_cache):
  family = ToyFamily()
  grid = interpolation.interpolation_latents(family, jax.random.PRNGKey(0), rows=3, cols=4)
  assert grid["z"].shape == (12, 3) and list(grid["label"][:4]) == [grid["label"][0]] * 4
  tr_i, tr_l, te_i, te_l, _ = toy_splits()
  config = resolved_config(eval_cache_dir=toy_cache, eval_space="classifier",
                           eval_classifier_epochs=3.0)
  scorer = samples_lib.SampleScorer(config, "", te_i, te_l)
  images, labels = samples_lib.draw_samples(family, 0, 40, jax.random.PRNGKey(1), batch_size=16)
  assert images.shape == (40, 12, 12, 1) and labels.shape == (40,)
  good = scorer(images, labels)
  swapped = samples_lib.draw_samples(family, 1, 40, jax.random.PRNGKey(1), batch_size=16)[0]
  bad = scorer(swapped, labels)  # Every image shows the other class than its label.
  assert good["class_accuracy"] > 0.9 and bad["class_accuracy"] < 0.1
  assert bad["intra_class_fid"] > good["intra_class_fid"]
  assert {"fid", "kid", "precision", "recall", "density", "coverage",
          "inception_score"} <= set(good)


def test_samples_do_not_depend_on_the_batch_size():
  family, key = ToyFamily(), jax.random.PRNGKey(3)
  images, labels = samples_lib.draw_samples(family, 0, 10, key, batch_size=3)
  all_at_once = samples_lib.draw_samples(family, 0, 10, key, batch_size=500)
  np.testing.assert_allclose(images, all_at_once[0], atol=1e-6)
  np.testing.assert_array_equal(labels, all_at_once[1])
  first = samples_lib.draw_samples(family, 0, 4, key, batch_size=2)
  np.testing.assert_allclose(first[0], images[:4], atol=1e-6)  # A prefix of a longer draw.
  assert len(set(labels.tolist())) == 2 and not np.allclose(images[0], images[1])


@pytest.mark.slow
def test_runs_of_resized_images_are_scored_at_their_size(tmp_path):
  """image_size > 0 (dcgan32, sngan, wgan_gp): the classifier is trained on, and the reference
  features cached for, the resized set, apart from the native size's files."""
  from genimg_jax.data import load_dataset

  config = resolved_config(dataset="mnist_embedded", image_size=16, eval_classifier_epochs=0.01,
                   eval_cache_dir=str(tmp_path))
  test = load_dataset(config.dataset, "test", image_size=16)
  scorer = samples_lib.SampleScorer(config, "", test.images[:300], test.labels[:300])
  assert "mnist_embedded@16" in scorer.space.name
  scores = scorer(test.images[300:400] / 255.0)
  assert np.isfinite(scores["fid"]) and scores["num_reference"] == 300
  names = [n for d in ("classifier", "reference") for n in os.listdir(tmp_path / d)]
  assert names and all(n.startswith("mnist_embedded@16-") for n in names), names
