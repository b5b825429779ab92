"""Evaluation during training, every `config.eval_every` steps: the sample metrics of a fixed
set of latents and, for VAEs, the test −ELBO; the score that picks the best checkpoint is FID
(GANs) or test −ELBO (VAEs), lower is better.

Randomness: the latents come from a key split off the run's evaluation key (itself split from
the seed, never from the training key), the same at every evaluation, so scores of different
steps differ only through the model, and evaluating never changes what training computes.
"""

import jax

from genimg_jax.evaluation import samples as samples_lib

PREFIX = "eval/"  # Scalar names in metrics.jsonl and TensorBoard: eval/fid, eval/kid, ...


class TrainingEvaluator:
  """Called with a state (and a VAE's test metrics); returns (scalars, score)."""

  def __init__(self, config, family, eval_key, test_data_fn):
    self.config = config
    self.family = family
    self.key = jax.random.split(eval_key)[1]
    self.test_data_fn = test_data_fn
    self._scorer = None  # Built on first use: it may train the classifier (once per cache).
    self.batch_size = min(500, config.eval_num_samples)
    self.sampler = samples_lib.make_sampler(family, self.batch_size)  # Compiled once per run.

  def scorer(self) -> samples_lib.SampleScorer:
    if self._scorer is None:
      test = self.test_data_fn()
      self._scorer = samples_lib.SampleScorer(self.config, "", test.images, test.labels)
    return self._scorer

  def __call__(self, state, vae_metrics: dict | None = None,
               eval_key=None) -> tuple[dict, float]:
    """`eval_key`: the run's evaluation key when one evaluator serves several runs."""
    key = self.key if eval_key is None else jax.random.split(eval_key)[1]
    images, labels = samples_lib.draw_samples(self.family, state, self.config.eval_num_samples,
                                              key, self.batch_size, self.sampler)
    scalars = {PREFIX + k: v for k, v in self.scorer()(images, labels).items()}
    if vae_metrics is not None:
      scalars.update({PREFIX + k: v for k, v in vae_metrics.items()})
      return scalars, float(vae_metrics["test_neg_elbo"])
    return scalars, float(scalars[PREFIX + "fid"])
