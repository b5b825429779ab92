"""Train a model: `python train.py --model gan [--workdir DIR] [--config.KEY=VALUE ...]`.

Flags → config (`configs/<model>.py` plus overrides) → `train_and_evaluate(config, workdir)`.
A run folder that already holds checkpoints is resumed from the latest one.
"""

import argparse
import datetime
import os
import sys

from genimg_jax import config_cli
from genimg_jax.errors import exit_on_user_error
from genimg_jax.train import signals


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="gan",
                      help="a config name (a file in configs/) or a path to a config .py file")
  parser.add_argument("--workdir", default=None, help="run folder (default runs/<model>-<time>)")
  args, rest = parser.parse_known_args(argv)
  return args, config_cli.parse_override_args(rest)


@exit_on_user_error
def main(argv=None):
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  config = config_cli.load_config(args.model)
  config_cli.apply_overrides(config, overrides)
  if config.search.strip():  # A random search: python -m genimg_jax.search, same flags.
    from genimg_jax import search  # pylint: disable=import-outside-toplevel
    search.run_search(config, args.workdir or search.default_workdir(config))
    return
  workdir = args.workdir or os.path.join(
      "runs", f"{config.model}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
  with signals.DeferredInterrupt():  # A Ctrl-C during the slow JAX import ends in one line.
    from genimg_jax.train import distributed  # After flag checks: JAX is slow.
    from genimg_jax.train.loop import train_and_evaluate

  with distributed.lost_peers_reported(workdir):  # A dead process: one line, not an abort.
    final = train_and_evaluate(config, workdir)
  summary = " | ".join(f"{k} {v:.4g}" for k, v in final.items())
  print(f"done: {config.num_steps} steps of {config.model} in {workdir} | {summary}", flush=True)


if __name__ == "__main__":
  main()
