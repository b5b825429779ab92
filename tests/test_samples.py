"""Sample scores by class: a conditional toy generator scored by the toy classifier, right and
wrong labels."""

import jax
import ml_collections

from genimg_jax.evaluation import interpolation
from genimg_jax.evaluation import samples as samples_lib
from tests.evaluation_support import ToyFamily, toy_splits


def test_conditional_samples_are_scored_by_class(toy_cache):
  family = ToyFamily()
  grid = interpolation.interpolation_latents(family, jax.random.PRNGKey(0), rows=3, cols=4)
  assert grid["z"].shape == (12, 3) and list(grid["label"][:4]) == [grid["label"][0]] * 4
  tr_i, tr_l, te_i, te_l, _ = toy_splits()
  config = ml_collections.ConfigDict({"dataset": "toy", "eval_cache_dir": toy_cache,
                                      "eval_space": "classifier", "eval_classifier_epochs": 3.0})
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
