"""How a random search scores each trained run (lower is better): scorers by name, the value of
`config.search_score`.

A scorer factory is called once per search with the search's config and returns
`score(images float32 [N, H, W, C] in [0, 1], labels int [N] | None) → (score, metrics)`: the
number the search ranks points by, and every metric worth recording beside it. The images are
the run's own `config.eval_num_samples` samples, drawn from its evaluation key as its training
evaluation draws them (genimg_jax/search.py).

Another protocol (e.g. the Inception FID of another resize and weights) joins by writing its
factory and calling `register(name, factory)` where it is defined, and importing that module
here; `--config.search_score=name` then selects it.
"""

from typing import Callable

import numpy as np

Score = Callable[[np.ndarray, "np.ndarray | None"], tuple[float, dict]]
SCORES: dict[str, Callable[..., Score]] = {}  # name → factory(config) → Score.


def register(name: str, factory: Callable[..., Score]) -> None:
  """Makes `name` a value of config.search_score."""
  SCORES[name] = factory


def classifier_fid(config) -> Score:
  """FID in the feature space of the project's MNIST-class classifier (evaluation/samples.py's
  SampleScorer, the metrics `evaluate --space classifier` prints), against the test split."""
  from genimg_jax.evaluation import samples  # pylint: disable=import-outside-toplevel  # JAX.

  scorer = samples.SampleScorer(config, "classifier")

  def score(images, labels=None):
    metrics = scorer(images, labels)
    return float(metrics["fid"]), metrics

  return score


register("fid_classifier", classifier_fid)


def make(config) -> Score:
  """The scorer config.search_score names (a checked value: train/search.py)."""
  return SCORES[config.search_score](config)
