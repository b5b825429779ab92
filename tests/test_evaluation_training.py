"""TrainingEvaluator (evaluation during training) on the toy data and its toy generator: the
same latents at every call, so the scores change only with the model; FID is a GAN's score and
the test −ELBO a VAE's; the scalars are named eval/..."""

import jax
import pytest

from genimg_jax.evaluation import training
from tests.evaluation_support import ToyFamily, resolved_config, toy_splits


class _TestSplit:
  def __init__(self):
    _, _, self.images, self.labels, _ = toy_splits()


def _evaluator(toy_cache, seed=0):
  config = resolved_config(eval_cache_dir=toy_cache, eval_space="classifier",
                           eval_classifier_epochs=3.0, eval_num_samples=40)
  loads = []
  evaluator = training.TrainingEvaluator(config, ToyFamily(), jax.random.PRNGKey(seed),
                                         lambda: loads.append(1) or _TestSplit())
  return evaluator, loads


def test_scores_change_with_the_model_only_and_fid_is_the_gan_score(toy_cache):
  evaluator, loads = _evaluator(toy_cache)
  good, good_score = evaluator(0)  # State 0 draws its label's class, state 1 the other one.
  again, _ = evaluator(0)
  bad, bad_score = evaluator(1)
  assert loads == [1]  # The test split is read (and the scorer built) once.
  assert good == again  # The same latents every time.
  assert good_score == good["eval/fid"] and bad_score == bad["eval/fid"]
  assert good["eval/num_samples"] == 40 and all(k.startswith("eval/") for k in good)
  assert good["eval/class_accuracy"] > 0.9 > 0.1 > bad["eval/class_accuracy"]
  other, _ = _evaluator(toy_cache, seed=1)[0](0)  # Another run's evaluation key: other latents.
  assert other["eval/fid"] != good["eval/fid"]


def test_a_vae_is_scored_by_its_test_neg_elbo(toy_cache):
  evaluator, _ = _evaluator(toy_cache)
  scalars, score = evaluator(0, {"test_neg_elbo": 97.5, "test_kl": 12.0})
  assert score == 97.5
  assert scalars["eval/test_neg_elbo"] == 97.5 and scalars["eval/test_kl"] == 12.0
  assert scalars["eval/fid"] == pytest.approx(evaluator(0)[0]["eval/fid"])
