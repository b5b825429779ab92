"""Which runs one program trains: `config.num_runs` seeds × the points of `config.sweep`.

A sweep is "KEY=v1,v2,…[;KEY2=w1,w2,…]": the runs cover the Cartesian product of the values
(keys in the order written, the last one varying fastest), or, with `config.sweep_zip`, the
explicit points (v1, w1), (v2, w2), … (every key lists one value per point: how a random
search hands a group of its points to one program, train/search.py), `num_runs` seeds each.
Run i is sweep point i // num_runs with seed `config.seed + i % num_runs`, so the runs of one
point differ only by seed and their spread is the seed noise. Only keys whose values change no
shape can be swept (each family lists them in `sweepable`); their values travel as per-run
arrays in the state (`hparams`), never as constants of the compiled step.
"""

import dataclasses
import itertools

from genimg_jax.errors import UserError

SYNTAX = "KEY=v1,v2,…[;KEY2=w1,w2,…]"


def parse(text: str) -> tuple[tuple[str, tuple[float, ...]], ...]:
  """config.sweep → ((key, values), …); () for "". One-line UserError if malformed."""
  if not text.strip():
    return ()
  parsed, seen = [], set()
  for part in text.split(";"):
    key, eq, values = part.partition("=")
    key = key.strip()
    if not eq or not key or not values.strip():
      raise UserError(f"config.sweep={text!r} is malformed at {part.strip()!r}: write {SYNTAX}")
    if key in seen:
      raise UserError(f"config.sweep={text!r} names {key} twice: give each key once")
    try:
      numbers = tuple(float(v) for v in values.split(","))
    except ValueError:
      raise UserError(f"config.sweep={text!r}: the values of {key} must be numbers, got "
                      f"{values.strip()!r} (write {SYNTAX})") from None
    seen.add(key)
    parsed.append((key, numbers))
  return tuple(parsed)


def uses_runs_axis(config) -> bool:
  """True when the state carries a leading runs axis: several seeds or any sweep."""
  return config.num_runs > 1 or bool(config.sweep.strip())


@dataclasses.dataclass(frozen=True)
class Plan:
  """The runs of one program, in state order."""

  seeds: tuple[int, ...]  # Run i's seed.
  points: tuple[dict, ...]  # Run i's sweep values {key: float} ({} without a sweep).
  keys: tuple[str, ...]  # The swept keys, in the order written.
  seeds_per_point: int  # config.num_runs.

  @property
  def size(self) -> int:
    return len(self.seeds)

  def point_of(self, run: int) -> int:
    return run // self.seeds_per_point

  def describe(self, run: int) -> str:
    """'run 2 (seed 2, learning_rate=0.001)'."""
    values = "".join(f", {k}={v:g}" for k, v in self.points[run].items())
    return f"run {run} (seed {self.seeds[run]}{values})"

  def run_config(self, config, run: int):
    """The config of run `run` alone: its seed and sweep values, one run, no sweep."""
    single = config.copy_and_resolve_references()
    with single.unlocked():
      single.seed = self.seeds[run]
      single.num_runs = 1
      single.sweep = ""
      single.sweep_zip = False
      for key, value in self.points[run].items():
        single[key] = type(config[key])(value) if isinstance(config[key], int) else value
    return single


def plan(config) -> Plan:
  """The runs of `config` (a single run when there is no runs axis)."""
  swept = parse(config.sweep)
  keys = tuple(k for k, _ in swept)
  pair = zip if config.sweep_zip else itertools.product  # Explicit points, or the product.
  points = [dict(zip(keys, combo)) for combo in pair(*(v for _, v in swept))]
  seeds, per_run = [], []
  for point in points:
    for r in range(config.num_runs):
      seeds.append(config.seed + r)
      per_run.append(point)
  return Plan(tuple(seeds), tuple(per_run), keys, config.num_runs)


def largest(config, key: str) -> float:
  """The largest value `key` takes in any run (for switches such as "is there a penalty")."""
  return max([config[key], *dict(parse(config.sweep)).get(key, ())])


def check_config(config, sweepable: tuple[str, ...], validate_run) -> None:
  """One-line UserError for a bad sweep: a key the family cannot sweep (it changes a shape or
  is not a setting) or a value that `validate_run(single-run config)` rejects."""
  swept = parse(config.sweep)
  if config.sweep_zip and len({len(values) for _, values in swept}) > 1:
    counts = ", ".join(f"{k} {len(v)}" for k, v in swept)
    raise UserError(f"config.sweep={config.sweep!r} with sweep_zip=True needs one value per "
                    f"point for every key, got {counts}: give every key as many values")
  for key, _ in swept:
    if key not in sweepable:
      kind = "is not a setting of" if key not in config else "cannot be swept in"
      raise UserError(f"config.sweep: {key} {kind} model {config.model!r} (it would change "
                      f"the compiled program); sweepable keys: {', '.join(sweepable)}")
  if not swept:
    return
  the_plan = plan(config)
  for run in range(0, the_plan.size, the_plan.seeds_per_point):
    try:
      validate_run(the_plan.run_config(config, run))
    except UserError as e:
      raise UserError(f"config.sweep point {the_plan.points[run]}: {e}") from None
