"""Scores a trained seed of a row: its samples in each feature space of the row (at the last
checkpoint, or at every checkpoint the source scored, the best reported), a VAE's bounds and its
IWAE NLL rounds; each checkpoint's scores kept on disk with the row's hash."""

import os
import time

import numpy as np

from genimg_jax.reproduce.records import latest_step, read_json, write_json
from genimg_jax.reproduce.rows import Row

NLL_KEY_SEED = 1000  # IWAE rounds r use fold_in(PRNGKey(NLL_KEY_SEED), r).


def likelihood_scores(workdir: str, k: int, rounds: int, run: int | None = None,
                      step: int | None = None) -> dict:
  """The test split's (binarised as the run was) IWAE NLL −L_k in `rounds` independent rounds
  of k importance samples per image, and its −ELBO; `run`: which run of a many-runs folder;
  `step`: None scores the model the run selects (select_model), a number that step's model."""
  import jax

  from genimg_jax import evaluate as evaluate_lib
  from genimg_jax.data import load_split
  from genimg_jax.generate import open_run, saved_config, select_run
  from genimg_jax.train import selection

  family, state, _, info = open_run(workdir, step)
  state = select_run(state, info, run)
  test = load_split(saved_config(info), "test")
  key = jax.random.PRNGKey(NLL_KEY_SEED)
  values = [float(evaluate_lib.iwae(family, state, test, jax.random.fold_in(key, r), k)
                  ["iwae_nll"]) for r in range(rounds)]
  bounds = family.evaluate(state, test.images, test.labels, jax.random.fold_in(key, rounds),
                           saved_config(info).eval_batch_size)
  scores = {"iwae_nll": float(np.mean(values)), "iwae_nll_rounds": values,
            "test_neg_elbo": bounds["test_neg_elbo"]}
  chosen = selection.best_steps(state)
  if chosen is not None and step is None:
    scores["selected_step"] = int(chosen)
  return scores


SPACE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")
VAE_METRICS = ("test_neg_elbo", "test_bits_per_dim")


def _space_scores(row: Row, run: dict, step, cache_dir: str, inception_weights: str):
  """(metrics, notes, {space: protocol}) of checkpoint `step` (None: the last) in every space
  of the row, the VAE bounds with the first."""
  from genimg_jax import evaluate as evaluate_lib

  metrics, notes, used = {}, [], {}
  for i, (space, num) in enumerate(row.spaces):
    if space == "inception" and not inception_weights:
      notes.append("Inception FID skipped: no --inception_weights (classifier space only)")
      continue
    protocol = row.protocol if space == "inception" else "clean"
    result = evaluate_lib.evaluate(run["workdir"], num, step, space, 0, 0, cache_dir,
                                   inception_weights if space == "inception" else "", False,
                                   run=run["run"], protocol=protocol)
    used[space] = result["protocol"]
    metrics.update({f"{m}_{space}": result[m] for m in SPACE_METRICS if m in result})
    if i == 0:
      metrics.update({m: result[m] for m in VAE_METRICS if m in result})
  return metrics, notes, used


def best_of_steps(curve: list[dict]) -> dict:
  """The checkpoint a source that scores every checkpoint reports: the lowest Inception FID,
  else the lowest classifier FID (ties: the earlier)."""
  key = "fid_inception" if all("fid_inception" in c for c in curve) else "fid_classifier"
  return min(curve, key=lambda c: c[key])


def step_score_path(run: dict, step: int) -> str:
  """Where checkpoint `step`'s scores of a seed are kept (beside its run folder)."""
  return os.path.join(os.path.dirname(run["workdir"]), f"scores_seed_{run['seed']}",
                      f"step_{step}.json")


def step_scores(row: Row, run: dict, step: int, cache_dir: str, inception_weights: str,
                digest: str = "") -> dict:
  """`_space_scores` of checkpoint `step`, kept on disk with the row's hash: a row killed
  while scoring many checkpoints (an hour each in the Inception space on a CPU) scores only
  the rest when run again, and checkpoints can be scored while training goes on. Returns
  {"metrics", "notes", "protocols", "seconds" (the scoring's time; None where a kept score
  did not record it), "kept" (read back, not computed now)}."""
  path = step_score_path(run, step)
  kept = read_json(path) if digest else None
  wanted = {space for space, _ in row.spaces if space != "inception" or inception_weights}
  if kept is not None and kept.get("row_hash") == digest and wanted <= set(kept["protocols"]):
    return {"seconds": None, **kept, "kept": True}
  start = time.perf_counter()
  metrics, notes, used = _space_scores(row, run, step, cache_dir, inception_weights)
  record = {"row_hash": digest, "metrics": metrics, "notes": notes, "protocols": used,
            "seconds": time.perf_counter() - start}
  if digest:
    write_json(path, record)
  return {**record, "kept": False}


def score_run(row: Row, run: dict, cache_dir: str, inception_weights: str,
              digest: str = "") -> dict:
  """Scores one trained seed: sample metrics in each of the row's spaces (keys METRIC_SPACE),
  the VAE bounds, the NLL rounds; notes for what was skipped; "protocols": the FID protocol
  of each space scored (the row's in the Inception space, "clean" elsewhere). With
  `row.score_steps`, every listed checkpoint is scored ("curve") and the metrics are the best
  one's (`best_of_steps`, "best_step"), as a source that keeps its best checkpoint; each
  checkpoint's scores are kept with the row's hash `digest` (`step_scores`), and
  "eval_seconds" counts the time of kept scores too."""
  start = time.perf_counter()
  curve, kept_seconds, untimed = [], 0.0, []
  if row.score_steps:
    for step in row.score_steps:
      scored = step_scores(row, run, step, cache_dir, inception_weights, digest)
      if scored["kept"]:
        kept_seconds += scored["seconds"] or 0.0
        untimed += [step] if scored["seconds"] is None else []
      curve.append({"step": step, **scored["metrics"]})
      notes, used = scored["notes"], scored["protocols"]
    notes = notes + ([f"the scoring time of the checkpoints at steps {untimed} (scored by an "
                      f"earlier session that did not record it) is not in the wall time"]
                     if untimed else [])
    best = best_of_steps(curve)
    metrics = {**{k: v for k, v in best.items() if k != "step"}, "best_step": best["step"]}
  else:
    metrics, notes, used = _space_scores(row, run, None, cache_dir, inception_weights)
  if row.iwae_k:
    scores = likelihood_scores(run["workdir"], row.iwae_k, row.nll_rounds, run["run"])
    metrics.update({k: v for k, v in scores.items() if k not in metrics})
    if "selected_step" in scores:  # The last model too: what selection on validation changed.
      last = likelihood_scores(run["workdir"], row.iwae_k, row.nll_rounds, run["run"],
                               latest_step(run["workdir"]))
      metrics.update({f"{k}_last_model": last[k] for k in ("iwae_nll", "test_neg_elbo")})
  return {**run, "metrics": metrics, "notes": notes, "protocols": used,
          **({"curve": curve} if curve else {}),
          "eval_seconds": time.perf_counter() - start + kept_seconds}
