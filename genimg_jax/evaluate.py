"""Score a run's checkpoint: one JSON line on stdout, appended to `W/eval.jsonl`.

    python -m genimg_jax.evaluate --workdir W [--num 10000] [--step S|best] [--seed 0]
        [--space classifier|inception] [--protocol clean|lucic] [--iwae_k 1000]
        [--no_interpolations] [--samples_out F]

Every model: FID, KID (mean ± std over subsets), precision/recall (k = 3), density/coverage
(k = 5) of `--num` samples against the whole test split, in the chosen feature space; the
Inception-style score of the project's classifier; for class-conditional models the
classifier's accuracy on the samples and intra-class FID. VAEs add the test −ELBO and the IWAE
bound with `--iwae_k` importance samples, in nats per image and bits/dim. The samples scored
are those `python -m genimg_jax.generate` writes for the same `--seed`; `--samples_out F` saves
them too (F_run<r>.npy per run when several runs are scored). A folder of several runs (num_runs > 1 or a sweep): one line per run (with its seed
and sweep values), then one line per sweep point with `<metric>_mean` / `<metric>_std` over its
seeds (frozen runs listed, not averaged); `--run R` scores run R alone.

`--protocol` (evaluation/protocols.py, docs/inception.md) names how the Inception-space FID is
made: "clean" (default) is clean-fid's; "lucic" is compare_gan v1's, as Lucic et al. 2018
computed it (TF 1 bilinear resize of unrounded images, the first 10,000 test images, 10,000
samples of an unconditional GAN from numpy seed 42's z ~ U(−1, 1); `--seed` then changes only
the interpolation grid). Every record names its protocol.
"""

import argparse
import dataclasses
import os
import time

import jax
import numpy as np

from genimg_jax import outputs
from genimg_jax.data import binarize as binarize_lib
from genimg_jax.data import load_dataset
from genimg_jax.errors import UserError, exit_on_user_error, flag_names
from genimg_jax.evaluation import features, likelihood, protocols
from genimg_jax.evaluation import samples as samples_lib
from genimg_jax.evaluation.interpolation import interpolation_images
from genimg_jax.train import selection
from genimg_jax.generate import open_run, parse_step, runs_of, save_npy, saved_config, select_run, stacked

EVAL_FILE = "eval.jsonl"
# This CLI's flag for each config key its messages (and its helpers') tell the user to set.
FLAGS = {"eval_cache_dir": "--cache_dir", "inception_weights": "--inception_weights",
         "eval_space": "--space"}


def iwae(family, state, test, key, num_samples: int, batch: int = 100,
         chunk: int = 500) -> dict[str, float]:
  """IWAE bound with k = num_samples through `family.log_importance_weights` (images, labels)."""
  log_weights = jax.jit(family.log_importance_weights, static_argnums=4)

  def log_weights_fn(index, key, k):  # Batches of test-set indices: images and their labels.
    return log_weights(state, test.images[index], test.labels[index], key, k)

  report = likelihood.likelihood_report(log_weights_fn, np.arange(len(test.images)), key,
                                        num_samples, batch, chunk, test.images.shape[1:])
  return report


def evaluate(workdir: str, num: int = 10_000, step=None, space: str = "classifier",
             iwae_k: int = 1000, seed: int = 0, cache_dir: str = "", inception_weights: str = "",
             interpolations: bool = True, samples_out: str = "", run: int | None = None,
             protocol: str = protocols.DEFAULT) -> dict:
  """Every metric of the run's checkpoint `step` (None: latest, "best"); see the module doc.
  `samples_out`: also save the scored images there (.npy, as generate writes them). `run`: which
  run of a folder of several runs (evaluate_all scores them all). `protocol`: the FID protocol
  (protocols.py)."""
  return evaluate_all(workdir, num, step, space, iwae_k, seed, cache_dir, inception_weights,
                      interpolations, samples_out, [run], protocol)[0]


def check_protocol(protocol: str, space: str, num: int) -> protocols.Protocol:
  """The protocol `protocol`, refused in one line where it cannot apply: a protocol other than
  "clean" is an Inception-space FID and fixes its own sample count."""
  chosen = protocols.get(protocol)
  if chosen.name == protocols.DEFAULT:
    return chosen
  if space != "inception":
    raise UserError(f"--protocol {chosen.name} is a protocol of the Inception-space FID: pass "
                    f"--space inception --inception_weights PATH (or --protocol clean)")
  if chosen.num_samples is not None and num != chosen.num_samples:
    raise UserError(f"--protocol {chosen.name} scores {chosen.num_samples:,} samples; --num "
                    f"{num} differs: leave --num at {chosen.num_samples} (or --protocol clean)")
  return chosen


def evaluate_all(workdir: str, num: int = 10_000, step=None, space: str = "classifier",
                 iwae_k: int = 1000, seed: int = 0, cache_dir: str = "",
                 inception_weights: str = "", interpolations: bool = True,
                 samples_out: str = "", which: list | None = None,
                 protocol: str = protocols.DEFAULT) -> list[dict]:
  """One record per run (`which`: run indices, default every run), then, for a folder of
  several runs, one summary record per sweep point: mean and std over its live seeds.
  `protocol` (protocols.py) picks the Inception preprocessing, the real images and the samples."""
  start = time.perf_counter()
  requested = step
  fid_protocol = check_protocol(protocol, space, num)
  family, state, step, info = open_run(workdir, step)
  config = saved_config(info)
  protocols.check_family(fid_protocol, config, family)
  if cache_dir:
    config.eval_cache_dir = cache_dir
  if inception_weights:
    config.inception_weights = inception_weights
  config.eval_protocol = fid_protocol.name  # features.get_space prepares Inception inputs so.
  test = load_dataset(config.dataset, "test", config.data_dir or None, config.image_size)
  key = jax.random.PRNGKey(seed)  # Its fold_in 0 draws the samples (samples.draw_seeded).
  real_images, real_labels = protocols.reference_images(fid_protocol, config.dataset,
                                                        test.images, test.labels)
  scorer = samples_lib.SampleScorer(config, space, real_images, real_labels)
  scored = test  # Binarised runs' bounds are on the test split's fixed binary draw.
  if config.binarize != "none":
    scored = dataclasses.replace(test, images=binarize_lib.for_split(
        test.images, config.binarize, config.seed, "test"))
  many = stacked(info)
  plan = runs_of(info)
  which = list(range(plan.size)) if which in (None, [None]) and many else which or [None]
  frozen = (dict(zip(range(plan.size), np.asarray(state.frozen_at).tolist())) if many else {})
  records = []
  for run in which:
    single = select_run(state, info, run)
    if fid_protocol.latent_seed is None:  # The family's prior, from --seed.
      images, labels = samples_lib.draw_seeded(family, single, num, seed)
    else:  # The protocol's own numpy latents (unconditional GANs only: no labels).
      images, labels = protocols.draw_fixed_latents(fid_protocol, family, single), None
    if samples_out:  # Several runs scored: one file each, F_run<r>.npy beside F.
      save_npy(samples_out if len(which) == 1 else run_path(samples_out, run), images,
               "--samples_out")
    result = {"step": step, "model": config.model, "dataset": config.dataset,
              "protocol": fid_protocol.name}
    chosen = selection.best_steps(single) if config.select_model == "best_validation" else None
    if chosen is not None and requested in (None, "best"):  # The best-validation model.
      result["selected_step"] = int(chosen)
    if many:
      result.update(run=run, seed=plan.seeds[run], **plan.points[run])
      if frozen[run]:
        result["frozen_at"] = frozen[run]
    result.update(space=scorer.space.name, **scorer(images, labels))
    if scorer.classifier is not None:
      result["classifier_test_accuracy"] = scorer.classifier.test_accuracy
    if family.scores_test_split:  # VAEs: test −ELBO (β = 1) in nats and bits/dim.
      result.update(family.evaluate(single, scored.images, scored.labels,
                                    jax.random.fold_in(key, 1), config.eval_batch_size))
      if family.estimates_likelihood and iwae_k > 0:
        result.update(iwae(family, single, scored, jax.random.fold_in(key, 2), iwae_k))
    if interpolations:
      grid = np.asarray(interpolation_images(family, single, jax.random.fold_in(key, 3)))
      result["interpolations"] = outputs.save_image_grid(
          grid, os.path.join(outputs.run_folder(workdir, run if many else None),
                             f"interpolations_{step}.png"), ncols=10)
    result["seconds"] = time.perf_counter() - start
    records.append(result)
  if many and len(which) > 1:
    records += point_summaries(records, plan, step, config.model)
  return records


def run_path(path: str, run: int) -> str:
  """`path` with `_run<run>` before its extension: samples.npy → samples_run2.npy."""
  stem, ext = os.path.splitext(path)
  return f"{stem}_run{run}{ext or '.npy'}"


def point_summaries(records: list[dict], plan, step, model: str) -> list[dict]:
  """Per sweep point: `<metric>_mean` and `<metric>_std` (population std) of every numeric
  metric over the point's live runs (frozen runs are listed, not averaged)."""
  summaries = []
  by_point = {}
  for record in records:
    by_point.setdefault(plan.point_of(record["run"]), []).append(record)
  for point, members in sorted(by_point.items()):
    live = [m for m in members if "frozen_at" not in m]
    summary = {"step": step, "model": model, "protocol": members[0].get("protocol"),
               "summary": "mean ± std over seeds",
               **plan.points[members[0]["run"]], "seeds": len(live),
               "frozen_runs": ",".join(str(m["run"]) for m in members if "frozen_at" in m)}
    names = [k for k, v in members[0].items() if isinstance(v, float)
             and k not in ("seconds", *plan.keys)]
    for name in names:
      values = np.array([m[name] for m in live], np.float64)
      summary[f"{name}_mean"] = float(np.mean(values)) if live else float("nan")
      summary[f"{name}_std"] = float(np.std(values)) if live else float("nan")
    summaries.append(summary)
  return summaries


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="run folder written by train.py")
  parser.add_argument("--num", type=int, default=10_000, help="generated samples to score")
  parser.add_argument("--step", default=None, help="checkpoint step or 'best' (default: latest)")
  parser.add_argument("--space", default="classifier", choices=features.SPACES,
                      help="feature space of FID/KID/precision/recall")
  parser.add_argument("--protocol", default=protocols.DEFAULT,
                      help="FID protocol: clean (clean-fid's, default) or lucic (compare_gan "
                      "v1's, as Lucic et al. 2018; Inception space, unconditional GANs)")
  parser.add_argument("--iwae_k", type=int, default=1000,
                      help="VAEs: importance samples per test image of the IWAE bound (0: skip)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
  parser.add_argument("--cache_dir", default="", help="classifier and reference-feature cache "
                      "(default: the run's eval_cache_dir, $GENIMG_CACHE_DIR, ~/.cache/genimg_jax)")
  parser.add_argument("--inception_weights", default="",
                      help="TorchScript Inception-v3 file (default: the run's inception_weights)")
  parser.add_argument("--no_interpolations", action="store_true",
                      help="skip the latent interpolation grid (W/interpolations_<step>.png)")
  parser.add_argument("--run", type=int, default=None,
                      help="score only this run of a folder of several runs (default: every run, "
                      "then mean ± std over the seeds of each sweep point)")
  parser.add_argument("--samples_out", default="",
                      help="also save the scored samples to this .npy (float32 [N, H, W, C] in "
                      "[0, 1]: generate's images of the same --seed); scoring several runs "
                      "writes one file per run, F_run<r>.npy")
  return parser


@exit_on_user_error
def main(argv=None):
  args = build_parser().parse_args(argv)
  if args.num < 10 or args.iwae_k < 0:
    raise UserError(f"--num must be at least 10 and --iwae_k zero or more, got {args.num}, "
                    f"{args.iwae_k}")
  check_protocol(args.protocol, args.space, args.num)  # A bad name fails before any loading.
  with flag_names(FLAGS):  # Messages of the helpers name this CLI's flags.
    records = evaluate_all(args.workdir, args.num, parse_step(args.step), args.space,
                           args.iwae_k, args.seed, args.cache_dir, args.inception_weights,
                           not args.no_interpolations, args.samples_out,
                           None if args.run is None else [args.run], args.protocol)
  lines = [outputs.json_line(record) for record in records]  # NaN → "nan": strict JSON.
  try:
    with open(os.path.join(args.workdir, EVAL_FILE), "a", encoding="utf-8") as f:
      f.write("".join(line + "\n" for line in lines))
  except OSError as e:
    raise UserError(f"cannot append to {os.path.join(args.workdir, EVAL_FILE)} ({e.strerror}): "
                    f"make the run folder writable") from None
  for line in lines:
    print(line, flush=True)


if __name__ == "__main__":
  main()
