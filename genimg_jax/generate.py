"""Samples from a run's checkpoint, for any external judge (FID scripts, reviewers).

    python -m genimg_jax.generate --workdir W --num N --out samples.npy [--step S|best] [--seed 0]
        [--run R]

Writes N images as float32 [N, H, W, C] in [0, 1] to the .npy file, and a PNG grid of the
first `--grid` of them beside it (same name, .png). They are the images `evaluate` scores with
the same `--seed` (evaluation/samples.py draws both), whatever `--batch_size`. A folder of
several runs (num_runs > 1 or a sweep) needs `--run R`: run R's samples equal those of the
single run with its seed and values.
"""

import argparse
import os

import jax
import ml_collections
import numpy as np

from genimg_jax import checkpoint as ckpt
from genimg_jax import outputs
from genimg_jax.errors import UserError, exit_on_user_error
from genimg_jax import sharding as sharding_lib
from genimg_jax.evaluation import samples as samples_lib
from genimg_jax.train import run_config, runs, selection, sweep
from genimg_jax.train.families import build_family


def load_run(workdir: str, step: int | str | None = None, run: int | None = None):
  """(family, state, step) of a run folder's checkpoint (`step`, "best" or the latest); in a
  folder of several runs (num_runs > 1 or a sweep), run `run`'s state."""
  family, state, step, info = open_run(workdir, step)
  return family, select_run(state, info, run), step


def select_run(state, info: dict, run: int | None):
  """Run `run`'s family state of a restored checkpoint; one-line UserError if `run` is missing
  or out of range."""
  count = runs_of(info).size if stacked(info) else 1
  if not stacked(info):
    if run not in (None, 0):
      raise UserError(f"--run {run}: this run folder holds a single run (use --run 0 or omit it)")
    return state
  if run is None or not 0 <= run < count:
    given = "is missing" if run is None else f"{run} is out of range"
    raise UserError(f"--run {given}: this run folder holds {count} runs (num_runs × sweep "
                    f"points): pass --run 0 … {count - 1}")
  return runs.select(state, run)


def saved_config(info: dict) -> ml_collections.ConfigDict:
  """The checkpoint's config, with the keys added since it was written at their neutral
  values."""
  return ml_collections.ConfigDict({**run_config.NEUTRAL_DEFAULTS, **info["config"]})


def stacked(info: dict) -> bool:
  """The checkpoint holds several runs (a runs.RunsState)."""
  return sweep.uses_runs_axis(saved_config(info))


def runs_of(info: dict) -> sweep.Plan:
  return sweep.plan(saved_config(info))


def open_run(workdir: str, step: int | str | None = None):
  """(family, state, step, run info) of a run folder's checkpoint: the latest (None), step
  `step`, or "best" (the lowest evaluation score). A run that selects its model on validation
  (select_model="best_validation") keeps that model in its state: None and "best" give it
  (from the latest checkpoint, params replaced by the best copy's); a step number gives the
  model of that step as trained. The run info holds the config and data shapes."""
  if not os.path.isdir(workdir):
    raise UserError(f"work directory {workdir} does not exist: pass a run folder of train.py")
  checkpointer = ckpt.Checkpointer(workdir, keep=1)
  latest = ckpt.require_checkpoint(checkpointer, None)
  info = checkpointer.restore_run_info(latest)
  config = saved_config(info)
  use_selected = step in (None, "best") and config.select_model == "best_validation"
  if not use_selected:
    step = ckpt.require_checkpoint(checkpointer, step)
    info = checkpointer.restore_run_info(step)
    config = saved_config(info)
  else:
    step = latest
  image_shape = tuple(info["image_shape"])
  family = build_family(config, image_shape, info.get("num_classes", 0))
  init = lambda key: family.init_state(key, info["num_examples"], image_shape)
  abstract = jax.eval_shape((lambda: runs.init_state(init, runs_of(info))) if stacked(info)
                            else (lambda: init(jax.random.PRNGKey(0))))
  sharding = sharding_lib.replicated(sharding_lib.make_mesh())
  state = checkpointer.restore(step, ckpt.abstract_like(abstract, sharding))
  checkpointer.close()
  if use_selected:
    state = (state.replace(runs=selection.selected(state.runs)) if stacked(info)
             else selection.selected(state))
  return family, state, step, info


def parse_step(text: str | None) -> int | str | None:
  """--step value: None (latest), "best", or a step number."""
  if text is None or text == "best":
    return text
  try:
    return int(text)
  except ValueError:
    raise UserError(f"--step must be a step number or 'best', got {text!r}") from None


def save_npy(path: str, array: np.ndarray, flag: str) -> None:
  """np.save to `path` (its folder made if needed); one line naming `flag` if it cannot."""
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.save(path, array)
  except OSError as e:
    raise UserError(f"cannot write {path} ({e.strerror}): choose a writable {flag}") from None


@exit_on_user_error
def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="run folder written by train.py")
  parser.add_argument("--num", type=int, required=True, help="number of samples")
  parser.add_argument("--out", required=True, help="output .npy file")
  parser.add_argument("--step", default=None,
                      help="checkpoint step, or 'best' (lowest evaluation score; default: latest)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of the latents (evaluate --seed scores the same images)")
  parser.add_argument("--batch_size", type=int, default=500, help="samples per compiled call")
  parser.add_argument("--grid", type=int, default=64, help="samples shown in the PNG grid")
  parser.add_argument("--run", type=int, default=None,
                      help="which run of a folder of several runs (num_runs > 1 or a sweep)")
  args = parser.parse_args(argv)
  if args.num <= 0 or args.batch_size <= 0:
    raise UserError(f"--num and --batch_size must be positive, got {args.num}, {args.batch_size}")
  family, state, step = load_run(args.workdir, parse_step(args.step), args.run)
  samples, _ = samples_lib.draw_seeded(family, state, args.num, args.seed, args.batch_size)
  save_npy(args.out, samples, "--out")
  grid_path = os.path.splitext(args.out)[0] + ".png"
  outputs.save_image_grid(samples[: args.grid], grid_path)
  print(f"wrote {args.num} samples of step {step}, shape {samples.shape}, float32 in [0, 1]: "
        f"{args.out} and {grid_path}", flush=True)


if __name__ == "__main__":
  main()
