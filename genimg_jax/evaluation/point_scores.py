"""How a random search scores each trained run (lower is better): scorers by name, the value of
`config.search_score`.

A scorer factory is called once per search with the search's config and returns
`score(images float32 [N, H, W, C] in [0, 1], labels int [N] | None) → (score, metrics)`: the
number the search ranks points by, and every metric worth recording beside it. The images are
the run's own `config.eval_num_samples` samples, drawn from its evaluation key as its training
evaluation draws them (genimg_jax/search.py).

Registered: fid_classifier, fid_inception (clean protocol) and fid_inception_lucic (compare_gan's
preprocessing and reference). Another scorer joins by writing its factory and calling
`register(name, factory)` where it is defined, and importing that module here;
`--config.search_score=name` then selects it.
"""

from typing import Callable

import numpy as np

Score = Callable[[np.ndarray, "np.ndarray | None"], tuple[float, dict]]
SCORES: dict[str, Callable[..., Score]] = {}  # name → factory(config) → Score.


def register(name: str, factory: Callable[..., Score]) -> None:
  """Makes `name` a value of config.search_score."""
  SCORES[name] = factory


def _fid_in(config, space: str) -> Score:
  """The FID of evaluation/samples.py's SampleScorer in `space` against the test split (the
  metrics `evaluate --space SPACE` prints), every metric recorded beside it."""
  from genimg_jax.evaluation import samples  # pylint: disable=import-outside-toplevel  # JAX.

  scorer = samples.SampleScorer(config, space)

  def score(images, labels=None):
    metrics = scorer(images, labels)
    return float(metrics["fid"]), metrics

  return score


def classifier_fid(config) -> Score:
  """FID in the feature space of the project's MNIST-class classifier."""
  return _fid_in(config, "classifier")


def inception_fid(protocol: str) -> Callable[..., Score]:
  """FID in the standard Inception-v3 space (config.inception_weights), its inputs prepared by
  the FID protocol `protocol` (evaluation/protocols.py: resize, scaling, reference images). The
  samples are the run's own, so under "lucic" only the preprocessing and the reference are
  compare_gan's, not its numpy-seeded latents: a ranking of points, as the source's search
  ranked them, not a number to set beside a paper's (reproduce scores checkpoints for that)."""

  def factory(config) -> Score:
    config = config.copy_and_resolve_references()
    with config.unlocked():
      config.eval_protocol = protocol  # features.get_space reads it (as evaluate sets it).
    return _fid_in(config, "inception")

  return factory


register("fid_classifier", classifier_fid)
register("fid_inception", inception_fid("clean"))
register("fid_inception_lucic", inception_fid("lucic"))
INCEPTION = ("fid_inception", "fid_inception_lucic")  # Scorers that need inception_weights.


def make(config) -> Score:
  """The scorer config.search_score names (a checked value: train/search.py)."""
  return SCORES[config.search_score](config)
