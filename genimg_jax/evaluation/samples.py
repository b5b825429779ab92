"""Drawing samples from a run (the one sampler of generate, evaluate and training), and every
sample metric of them against the test split.

`SampleScorer` holds what stays fixed between evaluations (feature space, the classifier,
cached test-split features), so a run scored every `eval_every` steps pays for them once.
"""

import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax.errors import UserError
from genimg_jax.evaluation import classifier as classifier_lib
from genimg_jax.evaluation import features as features_lib
from genimg_jax.evaluation import fid as fid_lib
from genimg_jax.evaluation import kid as kid_lib
from genimg_jax.evaluation import manifold, scores

PRECISION_RECALL_K = 3  # Kynkäänniemi et al. 2019.
DENSITY_COVERAGE_K = 5  # Naeem et al. 2020.


SAMPLES_STREAM = 0  # Key fold_in(PRNGKey(seed), 0) draws the samples of a CLI's --seed;
# evaluate folds in 1, 2, 3 for its other randomness (ELBO, IWAE, interpolations).


def make_sampler(family, batch_size: int):
  """jit(state, key, start) → (images [batch_size, H, W, C] in [0, 1], labels [batch_size] or
  None) of samples start, …, start + batch_size − 1.

  Sample i's latent is drawn alone from fold_in(key, i), so sample i is the same whatever the
  batch size and however many samples are drawn. Conditional families' latents are
  {"z", "label"} dicts; their labels come back too."""
  def sample(state, key, start):
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(start + jnp.arange(batch_size))
    latents = jax.tree_util.tree_map(lambda x: x[:, 0],  # [batch_size, 1, ...] → one each.
                                     jax.vmap(lambda k: family.sample_latents(k, 1))(keys))
    labels = latents["label"] if isinstance(latents, dict) else None
    return family.generate(state, latents), labels

  return jax.jit(sample)


def draw_samples(family, state, num: int, key, batch_size: int = 500, sampler=None):
  """(images float32 [num, H, W, C] in [0, 1], labels int [num] or None) from the prior;
  sample i from fold_in(key, i) (make_sampler). Pass `sampler` (make_sampler of this
  `batch_size`) to reuse its compilation."""
  if sampler is None:
    batch_size = min(batch_size, num)  # Fewer samples than a batch: compute only those.
    sampler = make_sampler(family, batch_size)
  images, labels = [], []
  for start in range(0, num, batch_size):
    batch_images, batch_labels = sampler(state, key, start)
    images.append(np.asarray(batch_images, np.float32))
    if batch_labels is not None:
      labels.append(np.asarray(batch_labels))
  return np.concatenate(images)[:num], (np.concatenate(labels)[:num] if labels else None)


def draw_seeded(family, state, num: int, seed: int, batch_size: int = 500):
  """The `num` samples of `--seed` (draw_samples): `python -m genimg_jax.generate` and
  `python -m genimg_jax.evaluate` both draw them here, so one seed gives them the same images."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), SAMPLES_STREAM)
  return draw_samples(family, state, num, key, batch_size)


class SampleScorer:
  """FID, KID, precision/recall, density/coverage in one space; IS (and, for conditional
  samples, class accuracy and intra-class FID) from the project's classifier."""

  def __init__(self, config, space: str = "", test_images=None, test_labels=None):
    from genimg_jax.data import load_dataset

    if test_images is None:
      test = load_dataset(config.dataset, "test", config.data_dir or None, config.image_size)
      test_images, test_labels = test.images, test.labels
    self.cache_dir = features_lib.resolve_cache_dir(config.eval_cache_dir)
    self.space_name = space or config.eval_space
    self.space = features_lib.get_space(config, self.space_name)
    self.classifier = (self.space if self.space_name == "classifier"
                       else _optional_classifier(config))
    self.test_labels = test_labels
    data_name = classifier_lib.data_name(config.dataset, config.image_size)
    self.real = features_lib.reference_features(self.space, data_name, test_images,
                                                self.cache_dir)
    self.real_stats = fid_lib.gaussian_stats(self.real)
    self.real_for_kid = getattr(self.space, "kid_features", lambda f: f)(self.real)
    self.real_for_classes = None
    if self.classifier is not None and self.classifier is not self.space:
      self.real_for_classes = features_lib.reference_features(
          self.classifier, data_name, test_images, self.cache_dir)

  def __call__(self, images: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of `images` (float [N, H, W, C] in [0, 1]) against the test split."""
    fake = self.space(images)
    precision, recall = manifold.precision_recall(self.real, fake, PRECISION_RECALL_K)
    density, coverage = manifold.density_coverage(self.real, fake, DENSITY_COVERAGE_K)
    kid_space = getattr(self.space, "kid_features", lambda f: f)  # Unit scale for k(x, y).
    kid_mean, kid_std = kid_lib.kid(self.real_for_kid, kid_space(fake))
    out = {"fid": fid_lib.frechet_distance(self.real_stats, fid_lib.gaussian_stats(fake)),
           "kid": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall,
           "density": density, "coverage": coverage,
           "num_samples": len(fake), "num_reference": len(self.real)}
    if self.classifier is not None:
      probs = self.classifier.probabilities(images)
      out["inception_score"], out["inception_score_std"] = scores.inception_score(probs)
      if labels is not None:
        out["class_accuracy"] = scores.class_accuracy(probs, labels)
        own = self.real if self.real_for_classes is None else self.real_for_classes
        mine = fake if self.real_for_classes is None else self.classifier(images)
        out["intra_class_fid"] = scores.intra_class_fid(mine, labels, own, self.test_labels)
    return out


def _optional_classifier(config):
  """The classifier for IS / class accuracy in the Inception space, if the data has labels."""
  try:
    return features_lib.get_classifier(config)
  except UserError:  # Unlabelled data: no classifier scores.
    return None
