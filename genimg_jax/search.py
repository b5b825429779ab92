"""A random hyper-parameter search, trained as runs-axis programs and scored point by point.

    python -m genimg_jax.search --model lucic_ns_gan [--workdir W] --config.search_points=100 \\
        --config.search="learning_rate=log10uniform(-5,-2);adam_b1=uniform(0,1);\\
n_critic=choice(1,5);discriminator_batch_norm=choice(0,1)" [--config.KEY=VALUE ...]

(`python train.py` with a non-empty `config.search` runs the same.) The points, and how they
group into programs, are train/search.py's. Each group trains in W/group_<g>/ as one program
of its points × num_runs seeds (an ordinary run folder of several runs); then every run that
did not diverge is scored (evaluation/point_scores.py, `config.search_score`) on
`eval_num_samples` samples from its evaluation key. A run that diverges is frozen (its point
fails when all its seeds froze) while the others train on; a group whose runs all diverge is
a group of failed points, not a crash. W/search.json records each point's values, group, runs
(seed, frozen or not, score, metrics) and score (the mean over its live seeds), each group's
program values and seconds; reproduce/search_plots.py draws it.

Resume: the same command. A finished group (its W/group_<g>/search_group.json) is read back;
an unfinished one resumes from its latest checkpoint.
"""

import argparse
import datetime
import json
import math
import os
import signal
import sys
import time

from genimg_jax import config_cli
from genimg_jax.errors import Interrupted, NonFiniteError, UserError, exit_on_user_error

RESULT = "search.json"
GROUP_RECORD = "search_group.json"


def _write_json(path: str, data) -> None:
  """Atomic JSON write (NaN written as null); one line if the folder is not writable."""
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
      json.dump(_finite(data), f, indent=1, sort_keys=False)
    os.replace(path + ".tmp", path)
  except OSError as e:
    raise UserError(f"cannot write {path} ({e.strerror}): pass a writable --workdir") from None


def _finite(data):
  """`data` with every non-finite float as None (strict JSON)."""
  if isinstance(data, float):
    return data if math.isfinite(data) else None
  if isinstance(data, dict):
    return {k: _finite(v) for k, v in data.items()}
  if isinstance(data, (list, tuple)):
    return [_finite(v) for v in data]
  return data


def _describe(values: dict) -> str:
  """'learning_rate=0.0001, discriminator_batch_norm=False'."""
  return ", ".join(f"{k}={v}" if isinstance(v, bool) else f"{k}={v:g}" for k, v in values.items())


def _read_group(group_dir: str, group_config) -> dict | None:
  """The record of a finished group, None if it has not finished; one line if the folder holds
  another program (another search in the same --workdir)."""
  path = os.path.join(group_dir, GROUP_RECORD)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    record = json.load(f)
  if record.get("sweep") != group_config.sweep:
    raise UserError(f"{group_dir} holds another search's group (sweep {record.get('sweep')!r}, "
                    f"this search's: {group_config.sweep!r}): use a new --workdir")
  return record


def _score_runs(group_config, group_dir: str, scorer_of) -> list[dict]:
  """Every run of a trained group folder: seed, frozen or not, and (live runs) score and
  metrics of its eval_num_samples samples from its evaluation key."""
  import jax  # pylint: disable=import-outside-toplevel  # JAX is slow to import.

  from genimg_jax import generate  # pylint: disable=import-outside-toplevel
  from genimg_jax.evaluation import samples  # pylint: disable=import-outside-toplevel
  from genimg_jax.train import runs, sweep  # pylint: disable=import-outside-toplevel

  plan = sweep.plan(group_config)
  family, state, _, _ = generate.open_run(group_dir)
  alive, frozen_at = jax.device_get((state.alive, state.frozen_at))
  num = group_config.eval_num_samples
  batch = min(500, num)
  sampler = samples.make_sampler(family, batch)
  results = []
  for r in range(plan.size):
    result = {"run": r, "seed": plan.seeds[r], "frozen": not bool(alive[r]),
              "frozen_at": int(frozen_at[r]) if not alive[r] else None}
    if alive[r]:  # The key TrainingEvaluator draws a run's evaluation samples from.
      key = jax.random.split(runs.run_keys(plan.seeds[r])[2])[1]
      images, labels = samples.draw_samples(family, runs.select(state, r), num, key, batch,
                                            sampler)
      result["score"], result["metrics"] = scorer_of()(images, labels)
    results.append(result)
  return results


def _train_group(group_config, group_dir: str, the_group, scorer_of) -> dict:
  """Trains one group (resuming its folder) and scores its runs: the group's record."""
  from genimg_jax.train import sweep  # pylint: disable=import-outside-toplevel
  from genimg_jax.train.loop import train_and_evaluate  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  try:
    train_and_evaluate(group_config, group_dir)
    trained = time.perf_counter()
    try:
      run_results = _score_runs(group_config, group_dir, scorer_of)
    except KeyboardInterrupt:
      raise Interrupted(f"SIGINT while scoring {group_dir}: its training is kept; run the same "
                        f"command to score it and go on", signal.SIGINT) from None
  except NonFiniteError as e:  # Every run of the group diverged: its points failed.
    print(f"group {the_group.index}: every run diverged ({e})", flush=True)
    trained = time.perf_counter()
    plan = sweep.plan(group_config)
    run_results = [{"run": r, "seed": plan.seeds[r], "frozen": True, "frozen_at": None}
                   for r in range(plan.size)]
  return {"group": the_group.index, "program": the_group.program,
          "points": list(the_group.points), "sweep": group_config.sweep,
          "workdir": os.path.basename(group_dir), "runs": run_results,
          "train_seconds": trained - start, "score_seconds": time.perf_counter() - trained}


def _point_records(points, groups, records, num_runs: int) -> list[dict]:
  """One record per point: its values, group, runs, failed (every seed froze) and score (the
  mean over its live seeds)."""
  out = []
  for i, values in enumerate(points):
    g = next(g for g in groups if i in g.points)
    j = g.points.index(i)
    point_runs = records[g.index]["runs"][j * num_runs:(j + 1) * num_runs]
    scores = [r["score"] for r in point_runs if not r["frozen"] and r.get("score") is not None
              and math.isfinite(r["score"])]
    mean = sum(scores) / len(scores) if scores else None
    std = (math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) if scores else None)
    out.append({"point": i, "values": values, "group": g.index, "runs": point_runs,
                "failed": not scores, "score": mean, "score_std": std})
  return out


def run_search(config, workdir: str) -> dict:
  """Trains and scores every point of config.search in `workdir`; returns (and writes to
  workdir/search.json) the result. NonFiniteError (exit 3) when every point diverged."""
  from genimg_jax.evaluation import point_scores  # pylint: disable=import-outside-toplevel
  from genimg_jax.train import distributed, run_config  # pylint: disable=import-outside-toplevel
  from genimg_jax.train import search as search_lib  # pylint: disable=import-outside-toplevel
  from genimg_jax.train.families import family_class  # pylint: disable=import-outside-toplevel

  run_config.validate(config)  # The ranges, and every drawn point as its own run.
  if not search_lib.parse(config.search):
    raise UserError("config.search is empty: give ranges, e.g. "
                    "--config.search='learning_rate=log10uniform(-5,-2)'")
  sweepable = family_class(config).sweepable
  points = search_lib.draw_points(config)
  per_run, program = search_lib.kinds(config, sweepable)
  groups = search_lib.group(points, program)
  print(f"search: {len(points)} points of {config.model} in {len(groups)} program(s), "
        f"{config.num_runs} seed(s) each; per-run keys: {', '.join(per_run) or 'none'}; "
        f"program keys: {', '.join(program) or 'none'}", flush=True)
  scorer = []

  def scorer_of():  # Built on first use (the classifier may train, once per cache).
    if not scorer:
      scorer.append(point_scores.make(config))
    return scorer[0]

  start, records = time.perf_counter(), []
  from genimg_jax.reproduce.records import environment  # Lazily, as the rest: JAX.
  env = environment()  # Device, date and the checkout the search starts on.
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot make the search folder {workdir} ({e.strerror}): pass a writable "
                    f"--workdir") from None
  with distributed.workdir_held(workdir):  # A second search in this folder stops here.
    for g in groups:
      group_dir = os.path.join(workdir, f"group_{g.index}")
      group_config = search_lib.group_config(config, g, points, sweepable)
      record = _read_group(group_dir, group_config)
      if record is None:
        print(f"group {g.index} ({_describe(g.program) or 'the config'}): points "
              f"{', '.join(map(str, g.points))}", flush=True)
        record = _train_group(group_config, group_dir, g, scorer_of)
        _write_json(os.path.join(group_dir, GROUP_RECORD), record)
      records.append(record)
    point_records = _point_records(points, groups, records, config.num_runs)
    result = {
        "model": config.model, "search": config.search, "search_points": config.search_points,
        "search_seed": config.search_seed, "num_runs": config.num_runs,
        "num_steps": config.num_steps, "model_num_steps": _model_num_steps(config.model),
        "score": config.search_score, "per_run_keys": list(per_run),
        "program_keys": list(program), "points": point_records,
        "groups": [{k: v for k, v in r.items() if k != "runs"} for r in records],
        # Seconds of training and scoring, summed over the groups (also those of earlier calls
        # of a resumed search); this call's own seconds, of which most may be read back.
        "seconds": sum(r["train_seconds"] + r["score_seconds"] for r in records),
        "call_seconds": time.perf_counter() - start, **env}
    path = os.path.join(workdir, RESULT)
    _write_json(path, result)
  _print_summary(result, path)
  return result


def _model_num_steps(model: str) -> int | None:
  """configs/<model>.py's own num_steps (the source's run length for the literature rows)."""
  try:
    return int(config_cli.load_config(model).num_steps)
  except (UserError, ImportError, AttributeError):
    return None


def _print_summary(result: dict, path: str) -> None:
  points = result["points"]
  scored = [p for p in points if not p["failed"]]
  failed = len(points) - len(scored)
  if not scored:
    raise NonFiniteError(f"every point of the search diverged ({len(points)} points): the "
                         f"record is {path}; narrow the ranges (e.g. lower learning rates)")
  best = min(scored, key=lambda p: p["score"])
  print(f"search done: {len(points)} points ({failed} failed) in {len(result['groups'])} "
        f"program(s), {result['seconds']:.1f} s; best point {best['point']} "
        f"({_describe(best['values'])}): {result['score']} {best['score']:.4g}; {path}",
        flush=True)


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="gan",
                      help="a config name (a file in configs/) or a path to a config .py file")
  parser.add_argument("--workdir", default=None,
                      help="search folder (default runs/<model>-search-<time>)")
  args, rest = parser.parse_known_args(argv)
  return args, config_cli.parse_override_args(rest)


def default_workdir(config) -> str:
  return os.path.join("runs", f"{config.model}-search-{datetime.datetime.now():%Y%m%d-%H%M%S}")


@exit_on_user_error
def main(argv=None):
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  config = config_cli.load_config(args.model)
  config_cli.apply_overrides(config, overrides)
  run_search(config, args.workdir or default_workdir(config))


if __name__ == "__main__":
  main()
