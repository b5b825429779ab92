"""Runs rows: a row's seeds trained as one program (the runs axis: num_runs = seeds), scored
in-process with the project's evaluate machinery, and recorded so a rerun skips what is
finished.

Layout under the output folder (default reproduce_runs/):
  ROW/seed_S/run/          a one-seed row's training run (train_and_evaluate: a killed run
  ROW/seeds_S-T/run/       resumes here from its latest checkpoint); seeds S … T of a row of
                           several seeds train together in one folder (run r is seed S + r)
  ROW/row.json             the row's hash, written before its first training step
  ROW/seed_S/result.json   that seed's scores, written once it is trained and scored
  ROW/done.json            the row's record (every seed's scores, means ± std), written last
Each record carries the row's hash (its settings and resolved configs); a folder of a row whose
hash changed since (rows.py or configs/<model>.py edited) is moved aside to ROW.stale-HASH and
the row trained again.
"""

import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import time

import numpy as np

from genimg_jax import config_cli
from genimg_jax.errors import Interrupted, UserError
from genimg_jax.reproduce.records import (REPO_ROOT, environment, latest_step, read_json,
                                          write_json)
from genimg_jax.reproduce.rows import Row
from genimg_jax.reproduce.scoring import score_run

# A row's words: not in its hash (changing them retrains nothing).
WORDS = ("estimate_minutes", "estimate_basis", "reference", "differences", "headline")


def row_hash(row: Row) -> str:
  """Hash of what the row computes: its settings (not its words, WORDS) and the resolved config
  of every seed, so editing configs/<model>.py makes a finished row stale. Sorted JSON (tuples
  and lists alike) keeps it the same in every process; keys at their neutral defaults are
  left out, as in the checkpoint's fingerprint, so a new key does not make old rows stale."""
  from genimg_jax.train import run_config  # Lazily: it imports JAX.

  data = {k: v for k, v in dataclasses.asdict(row).items()  # A "clean" protocol is left out:
          if k not in WORDS and (k, v) != ("protocol", "clean")}  # rows keep their hashes.
  data["configs"] = [run_config.without_neutral(row_config(row, seed).to_dict())
                     for seed in row.seeds]  # Keys added at neutral values change nothing.
  return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def row_config(row: Row, seed: int, data_dir: str = "", cache_dir: str = ""):
  """configs/<row.model>.py with the row's settings for `seed` (validated when trained)."""
  config = config_cli.load_config(row.model)
  for key, value in row.config_overrides(seed).items():
    if key not in config:
      raise UserError(f"row {row.name}: config key {key!r} is not declared by model "
                      f"{row.model!r}")
    config[key] = value
  if data_dir:
    config.data_dir = data_dir
  if cache_dir:
    config.eval_cache_dir = cache_dir
  return config


SOURCE_FILES = {"binarized_mnist": "binarized_mnist_{train,valid,test}.amat[.gz] files"}


def prepare_command(dataset: str, data_dir: str) -> str:
  files = SOURCE_FILES.get(dataset, "IDX files")
  return (f"python -m genimg_jax.prepare {dataset} --from DIR --data_dir {data_dir}  "
          f"(DIR: the folder of {dataset}'s {files})")


def missing_data(row: Row, data_dir: str = "") -> str:
  """'' when the row's data set can be read, else the line saying how to prepare it."""
  if row.dataset == "mnist_embedded":
    return ""
  from genimg_jax.data import tfds_source  # Lazily: TFDS is slow to import.

  resolved = tfds_source.resolve_data_dir(data_dir or None)
  try:
    tfds_source.find_prepared(row.dataset, resolved)
  except UserError:
    return (f"data set {row.dataset} is not prepared in {resolved}: run "
            f"`{prepare_command(row.dataset, resolved)}`, then run this row again")
  return ""


def _samples_per_second(workdir: str, images_per_step: int) -> float:
  """Mean training throughput of the logged intervals (the first, with compilation, left out
  when there are more); a many-runs folder logs each interval once per run, counted once."""
  rates = {}
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      if "steps_per_sec" in record:
        rates.setdefault(record["step"], record["steps_per_sec"])
  values = list(rates.values())
  values = values[1:] or values
  return float(np.mean(values)) * images_per_step if values else float("nan")


def logged_training_seconds(workdir: str) -> float:
  """Training time summed over every logged interval of the run, whichever session trained
  it (steps / steps_per_sec per interval; a many-runs folder's interval counted once)."""
  rates = {}
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      if record.get("steps_per_sec"):
        rates.setdefault(record["step"], record["steps_per_sec"])
  steps = sorted(rates)
  return float(sum((b - a) / rates[b] for a, b in zip([0] + steps, steps)))


def runs_folder(row: Row, row_dir: str) -> str:
  """The work directory that trains all of the row's seeds."""
  first, last = row.seeds[0], row.seeds[-1]
  name = f"seed_{first}" if len(row.seeds) == 1 else f"seeds_{first}-{last}"
  return os.path.join(row_dir, name, "run")


def train_runs(row: Row, row_dir: str, data_dir: str, cache_dir: str) -> list[dict]:
  """Trains the row's seeds s, s+1, … as one program (num_runs = their count; one seed: the
  plain single run) in `runs_folder`, resuming a checkpoint there. One dict per seed:
  {"seed", "run" (its index in the folder, None for one seed), "workdir", "grid_dir",
  "train_seconds" (the program's training time shared equally: this session's, or the
  logged intervals' when more, as for a run trained by an earlier session), "resumed_from_step",
  "samples_per_sec" (of the whole program: every seed's images)}."""
  from genimg_jax.outputs import run_folder
  from genimg_jax.train.loop import train_and_evaluate  # Lazily: JAX is slow to import.

  seeds = list(row.seeds)
  if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
    raise UserError(f"row {row.name}: seeds {seeds} are not consecutive: the runs axis trains "
                    f"seeds s, s+1, … (list them so)")
  config = row_config(row, seeds[0], data_dir, cache_dir)
  config.num_runs = len(seeds)
  workdir = runs_folder(row, row_dir)
  resumed = latest_step(workdir)
  start = time.perf_counter()
  train_and_evaluate(config, workdir)
  seconds = max(time.perf_counter() - start, logged_training_seconds(workdir))
  per_step = config.batch_size * (config.n_critic if config.family == "gan" else 1)
  rate = _samples_per_second(workdir, per_step * len(seeds))
  many = len(seeds) > 1
  return [{"seed": seed, "run": r if many else None, "workdir": workdir,
           "grid_dir": run_folder(workdir, r if many else None),
           "train_seconds": seconds / len(seeds), "resumed_from_step": resumed,
           "samples_per_sec": rate, "runs_in_program": len(seeds)}
          for r, seed in enumerate(seeds)]


def _summary(seed_results: list[dict]) -> dict:
  """{metric: [mean, std over seeds, n]} of every scalar metric."""
  keys = sorted({k for r in seed_results for k, v in r["metrics"].items()
                 if isinstance(v, (int, float))})
  out = {}
  for key in keys:
    values = [r["metrics"][key] for r in seed_results if key in r["metrics"]]
    out[key] = [float(np.mean(values)), float(np.std(values)), len(values)]
  return out


def _last_grid(workdir: str) -> str:
  grids = glob.glob(os.path.join(workdir, "samples_*.png"))
  steps = [int(re.findall(r"samples_(\d+)\.png$", g)[0]) for g in grids]
  return grids[int(np.argmax(steps))] if grids else ""


def _recorded_hash(row_dir: str) -> str:
  """The hash the row's folder was made under ('' when it holds no record yet)."""
  paths = [os.path.join(row_dir, name) for name in ("done.json", "row.json")]
  paths += sorted(glob.glob(os.path.join(row_dir, "seed_*", "result.json")))
  for path in paths:
    record = read_json(path)
    if isinstance(record, dict) and record.get("row_hash"):
      return record["row_hash"]
  return ""


def _retire_stale(row: Row, row_dir: str, digest: str, log) -> None:
  """Moves a folder of `row` made under another hash to ROW.stale-HASH (its checkpoints would
  resume the old config), so the row trains again from scratch."""
  old = _recorded_hash(row_dir)
  if not old or old == digest:
    return
  target, n = f"{row_dir}.stale-{old}", 1
  while os.path.exists(target):
    target, n = f"{row_dir}.stale-{old}-{n}", n + 1
  os.replace(row_dir, target)
  log(f"{row.name}: its settings or configs/{row.model}.py changed since it ran (hash {old}, "
      f"now {digest}): the earlier runs moved to {target}; training it again")


def _copy_grid(row: Row, results: list[dict], images_dir: str) -> str:
  """Copies the row's last sample grid (of its first seed) to IMAGES/ROW.png; '' when none."""
  grid = _last_grid(results[0].get("grid_dir", results[0]["workdir"]))
  if not grid:
    return ""
  os.makedirs(images_dir, exist_ok=True)
  image = os.path.join(images_dir, f"{row.name}.png")
  shutil.copyfile(grid, image)
  return image


def run_row(row: Row, out_dir: str, images_dir: str, data_dir: str = "", cache_dir: str = "",
            inception_weights: str = "", log=print) -> dict:
  """Trains and scores `row` (or reads its finished record); returns its record, whose
  "status" is "done", "skipped" (data not prepared: "reason" says what to run) or "failed"."""
  row_dir = os.path.join(out_dir, row.name)
  digest = row_hash(row)
  _retire_stale(row, row_dir, digest, log)
  done = read_json(os.path.join(row_dir, "done.json"))
  if done is not None:
    log(f"{row.name}: finished earlier, skipped ({os.path.join(row_dir, 'done.json')})")
    # The hash covers what was computed; the words (reference, differences, estimates) are
    # the row's current ones, and the grid goes to this invocation's images folder.
    done["definition"] = dataclasses.asdict(row)
    done["image"] = _copy_grid(row, done["seeds"], images_dir) or done.get("image", "")
    return done
  env = environment()  # The checkout the row is trained with (read now, not when it ends).
  reason = missing_data(row, data_dir)
  if reason:
    log(f"{row.name}: skipped: {reason}")
    return {"row": row.name, "status": "skipped", "reason": reason}
  write_json(os.path.join(row_dir, "row.json"), {"row": row.name, "row_hash": digest})
  seed_results, todo = {}, []
  for seed in row.seeds:
    result = read_json(os.path.join(row_dir, f"seed_{seed}", "result.json"))
    if result is not None and result.get("row_hash") == digest:
      seed_results[seed] = result
    else:
      todo.append(seed)
  try:
    runs = train_runs(row, row_dir, data_dir, cache_dir) if todo else []
    if runs:
      log(f"{row.name}: seed{'s' if len(runs) > 1 else ''} "
          f"{', '.join(str(r['seed']) for r in runs)} trained in one program in "
          f"{sum(r['train_seconds'] for r in runs):.0f} s")
    for run in (run for run in runs if run["seed"] in todo):
      result = dict(score_run(row, run, cache_dir, inception_weights, digest),
                    row_hash=digest)
      write_json(os.path.join(row_dir, f"seed_{run['seed']}", "result.json"), result)
      seed_results[run["seed"]] = result
      log(f"{row.name}: seed {run['seed']} scored in {result['eval_seconds']:.0f} s")
  except Interrupted:
    raise
  except UserError as e:  # One row's failure (a NaN, a bad setting) does not stop the suite.
    log(f"{row.name}: failed: {e}")
    return {"row": row.name, "status": "failed", "reason": str(e)}
  results = [seed_results[s] for s in row.seeds]
  record = {"row": row.name, "status": "done", "row_hash": digest,
            "definition": dataclasses.asdict(row), "seeds": results,
            "summary": _summary(results), "image": _copy_grid(row, results, images_dir),
            "wall_seconds": sum(r["train_seconds"] + r["eval_seconds"] for r in results),
            "samples_per_sec": float(np.mean([r["samples_per_sec"] for r in results])),
            "runs_in_program": max(r.get("runs_in_program", 1) for r in results),
            "resumed": any(r["resumed_from_step"] for r in results),
            "notes": sorted({n for r in results for n in r["notes"]}),
            "command": f"python -m genimg_jax.reproduce --suite {row.name}",
            **env}
  write_json(os.path.join(row_dir, "done.json"), record)
  log(f"{row.name}: done")
  return record


def stderr_log(line: str) -> None:
  print(line, file=sys.stderr, flush=True)
