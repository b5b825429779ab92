"""Runs rows: every seed trained in its own work directory, scored in-process with the
project's evaluate machinery, and recorded so a rerun skips what is finished.

Layout under the output folder (default reproduce_runs/):
  ROW/seed_S/run/          the training run (train_and_evaluate: a killed run resumes here
                           from its latest checkpoint)
  ROW/seed_S/result.json   that seed's scores, written once it is trained and scored
  ROW/done.json            the row's record (every seed's scores, means ± std), written last
Each record carries the row's hash; a folder of a row whose definition changed is refused.
Seeds are trained one after another by `train_runs` (one call for a row's seeds, so they can
become one vmapped run later) and scored one by one by `score_run`.
"""

import dataclasses
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

from genimg_jax import config_cli
from genimg_jax.errors import Interrupted, UserError
from genimg_jax.reproduce.rows import Row

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NLL_KEY_SEED = 1000  # IWAE rounds r use fold_in(PRNGKey(NLL_KEY_SEED), r).


def row_hash(row: Row) -> str:
  """Hash of what the row computes (not its estimates): records of another hash are stale."""
  data = dataclasses.asdict(row)
  for key in ("estimate_minutes", "estimate_basis", "reference", "differences"):
    data.pop(key)
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


def prepare_command(dataset: str, data_dir: str) -> str:
  return (f"python -m genimg_jax.prepare {dataset} --from DIR --data_dir {data_dir}  "
          f"(DIR: the folder of {dataset}'s IDX files)")


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


def _read_json(path: str):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _write_json(path: str, data) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1, sort_keys=True, default=float)
  os.replace(tmp, path)  # A kill never leaves half a record.


def _latest_step(workdir: str) -> int:
  steps = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints"))
           if d.isdigit()] if os.path.isdir(os.path.join(workdir, "checkpoints")) else []
  return max(steps, default=0)


def _samples_per_second(workdir: str, images_per_step: int) -> float:
  """Mean training throughput of the logged intervals (the first, with compilation, left out
  when there are more)."""
  lines = []
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      if "steps_per_sec" in record:
        lines.append(record["steps_per_sec"])
  rates = lines[1:] or lines
  return float(np.mean(rates)) * images_per_step if rates else float("nan")


def train_runs(row: Row, seeds, row_dir: str, data_dir: str, cache_dir: str) -> list[dict]:
  """Trains each seed in ROW/seed_S/run (resuming a checkpoint there); one dict per seed:
  {"seed", "workdir", "train_seconds", "resumed_from_step", "samples_per_sec"}."""
  from genimg_jax.train.loop import train_and_evaluate  # Lazily: JAX is slow to import.

  runs = []
  for seed in seeds:
    config = row_config(row, seed, data_dir, cache_dir)
    workdir = os.path.join(row_dir, f"seed_{seed}", "run")
    resumed = _latest_step(workdir)
    start = time.perf_counter()
    train_and_evaluate(config, workdir)
    seconds = time.perf_counter() - start
    per_step = config.batch_size * (config.n_critic if config.family == "gan" else 1)
    runs.append({"seed": seed, "workdir": workdir, "train_seconds": seconds,
                 "resumed_from_step": resumed,
                 "samples_per_sec": _samples_per_second(workdir, per_step)})
  return runs


def nll_rounds(workdir: str, k: int, rounds: int) -> list[float]:
  """IWAE NLL −L_k of the test split (binarised as the run was) in `rounds` independent
  rounds of k importance samples per image."""
  import jax
  import ml_collections

  from genimg_jax import evaluate as evaluate_lib
  from genimg_jax.data import load_split
  from genimg_jax.generate import open_run

  family, state, _, info = open_run(workdir, None)
  test = load_split(ml_collections.ConfigDict(info["config"]), "test")
  key = jax.random.PRNGKey(NLL_KEY_SEED)
  return [float(evaluate_lib.iwae(family, state, test, jax.random.fold_in(key, r), k)
                ["iwae_nll"]) for r in range(rounds)]


SPACE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")
VAE_METRICS = ("test_neg_elbo", "test_bits_per_dim")


def score_run(row: Row, run: dict, cache_dir: str, inception_weights: str) -> dict:
  """Scores one trained seed: sample metrics in each of the row's spaces (keys METRIC_SPACE),
  the VAE bounds, the NLL rounds; notes for what was skipped."""
  from genimg_jax import evaluate as evaluate_lib

  metrics, notes = {}, []
  start = time.perf_counter()
  for i, (space, num) in enumerate(row.spaces):
    if space == "inception" and not inception_weights:
      notes.append("Inception FID skipped: no --inception_weights (classifier space only)")
      continue
    result = evaluate_lib.evaluate(run["workdir"], num, None, space, 0, 0, cache_dir,
                                   inception_weights if space == "inception" else "", False)
    metrics.update({f"{m}_{space}": result[m] for m in SPACE_METRICS if m in result})
    if i == 0:
      metrics.update({m: result[m] for m in VAE_METRICS if m in result})
  if row.iwae_k:
    values = nll_rounds(run["workdir"], row.iwae_k, row.nll_rounds)
    metrics["iwae_nll"] = float(np.mean(values))
    metrics["iwae_nll_rounds"] = values
  return {**run, "metrics": metrics, "notes": notes,
          "eval_seconds": time.perf_counter() - start}


def _summary(seed_results: list[dict]) -> dict:
  """{metric: [mean, std over seeds, n]} of every scalar metric."""
  keys = sorted({k for r in seed_results for k, v in r["metrics"].items()
                 if isinstance(v, (int, float))})
  out = {}
  for key in keys:
    values = [r["metrics"][key] for r in seed_results if key in r["metrics"]]
    out[key] = [float(np.mean(values)), float(np.std(values)), len(values)]
  return out


def environment() -> dict:
  """Device, UTC date and the repository's commit (with '-dirty' for uncommitted changes)."""
  import jax

  device = jax.devices()[0]
  try:
    commit = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain",
                            "--untracked-files=no"], capture_output=True, text=True,
                           check=True).stdout.strip()
    commit += "-dirty" if dirty else ""
  except (OSError, subprocess.CalledProcessError):
    commit = "unknown"
  kind = device.device_kind if device.device_kind != device.platform else ""
  cores = f", {os.cpu_count()} host cores" if device.platform == "cpu" else ""
  return {"device": f"{jax.device_count()}× {device.platform} {kind}".strip() + cores,
          "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
          "commit": commit}


def _last_grid(workdir: str) -> str:
  grids = glob.glob(os.path.join(workdir, "samples_*.png"))
  steps = [int(re.findall(r"samples_(\d+)\.png$", g)[0]) for g in grids]
  return grids[int(np.argmax(steps))] if grids else ""


def run_row(row: Row, out_dir: str, images_dir: str, data_dir: str = "", cache_dir: str = "",
            inception_weights: str = "", log=print) -> dict:
  """Trains and scores `row` (or reads its finished record); returns its record, whose
  "status" is "done", "skipped" (data not prepared: "reason" says what to run) or "failed"."""
  row_dir = os.path.join(out_dir, row.name)
  digest = row_hash(row)
  done = _read_json(os.path.join(row_dir, "done.json"))
  if done is not None:
    if done.get("row_hash") != digest:
      raise UserError(f"{row_dir} holds row {row.name} as defined before (hash "
                      f"{done.get('row_hash')}, now {digest}): remove that folder or pass "
                      f"another --out")
    log(f"{row.name}: finished earlier, skipped ({os.path.join(row_dir, 'done.json')})")
    return done
  reason = missing_data(row, data_dir)
  if reason:
    log(f"{row.name}: skipped: {reason}")
    return {"row": row.name, "status": "skipped", "reason": reason}
  seed_results, todo = {}, []
  for seed in row.seeds:
    result = _read_json(os.path.join(row_dir, f"seed_{seed}", "result.json"))
    if result is not None and result.get("row_hash") == digest:
      seed_results[seed] = result
    else:
      todo.append(seed)
  try:
    for run in train_runs(row, todo, row_dir, data_dir, cache_dir):
      result = dict(score_run(row, run, cache_dir, inception_weights), row_hash=digest)
      _write_json(os.path.join(row_dir, f"seed_{run['seed']}", "result.json"), result)
      seed_results[run["seed"]] = result
      log(f"{row.name}: seed {run['seed']} trained in {run['train_seconds']:.0f} s, scored in "
          f"{result['eval_seconds']:.0f} s")
  except Interrupted:
    raise
  except UserError as e:  # One row's failure (a NaN, a bad setting) does not stop the suite.
    log(f"{row.name}: failed: {e}")
    return {"row": row.name, "status": "failed", "reason": str(e)}
  results = [seed_results[s] for s in row.seeds]
  grid = _last_grid(results[0]["workdir"])
  image = ""
  if grid:
    os.makedirs(images_dir, exist_ok=True)
    image = os.path.join(images_dir, f"{row.name}.png")
    shutil.copyfile(grid, image)
  record = {"row": row.name, "status": "done", "row_hash": digest,
            "definition": dataclasses.asdict(row), "seeds": results,
            "summary": _summary(results), "image": image,
            "wall_seconds": sum(r["train_seconds"] + r["eval_seconds"] for r in results),
            "samples_per_sec": float(np.mean([r["samples_per_sec"] for r in results])),
            "resumed": any(r["resumed_from_step"] for r in results),
            "notes": sorted({n for r in results for n in r["notes"]}),
            "command": f"python -m genimg_jax.reproduce --suite {row.name}",
            **environment()}
  _write_json(os.path.join(row_dir, "done.json"), record)
  log(f"{row.name}: done")
  return record


def finished_records(out_dir: str, rows) -> list[dict]:
  """The done.json records under `out_dir` of `rows` (current definitions only)."""
  records = []
  for row in rows:
    done = _read_json(os.path.join(out_dir, row.name, "done.json"))
    if done is not None and done.get("row_hash") == row_hash(row):
      records.append(done)
  return records


def stderr_log(line: str) -> None:
  print(line, file=sys.stderr, flush=True)
