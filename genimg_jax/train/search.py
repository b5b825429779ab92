"""A random hyper-parameter search as runs-axis programs: which points, and which program
trains each (the driver that trains and scores them: genimg_jax/search.py).

`config.search` gives one range per key, "KEY=DIST(…)[;KEY2=DIST(…)…]", DIST one of
`uniform(lo,hi)`, `log10uniform(lo,hi)` (10^U(lo, hi), Lucic et al.'s learning rates) and
`choice(v1,v2,…)`. `config.search_points` points are tried: point 0 is the config's own
values (as compare_gan always includes its defaults), points 1, 2, … are drawn by
`np.random.default_rng(config.search_seed)`: point after point, key after key in the order
written, `uniform` and `log10uniform` one `rng.uniform(lo, hi)` each (the exponent for
`log10uniform`), `choice` one `rng.integers(len(values))`. The same seed and ranges give the
same points on any machine (numpy's PCG64 stream); adding or reordering keys redraws them all.

Two kinds of key:
- per-run values: the family's `sweepable` keys (learning_rate, adam_b1, adam_b2, gp_weight,
  ema_decay, beta). They change no shape, so points that differ only in them share one
  compiled program, each point's value a per-run array of the runs axis (train/sweep.py).
- program-changing keys: any other number or switch of the model's config. n_critic changes
  how many real batches a step draws and the D-update loop's length; discriminator_batch_norm
  adds or removes layers (other parameters and state); batch_size, widths, latent_dim change
  shapes. Points must share every such value to train in one program.
  A searched n_critic keeps the real batches a point sees: a point with n_critic k trains
  round(num_steps · config.n_critic / k) steps, as compare_gan counts D updates (its
  training_steps), so n_critic = 5 is not five times the data of n_critic = 1.

So the points are grouped by their program-changing values (groups in order of their first
point, point 0's group first), and each group is one runs-axis program: the group's values set
in the config, and its points handed to the Plan as explicit points (`sweep_zip=True`, one
value per point for every per-run key), `num_runs` seeds each. A group's run folder is an
ordinary run folder of several runs: it resumes, and `evaluate` / `generate --run r` read it.
Keys that say how long or how often (RESUMABLE_KEYS), the seed, runs and search keys
themselves, and image_size are not searchable: they change nothing a point computes, belong to
the search, or would score the points against different data.
"""

import dataclasses
import math
import os
import re

import numpy as np

from genimg_jax import config_checks as checks
from genimg_jax.errors import UserError

SYNTAX = "KEY=uniform(lo,hi)|log10uniform(lo,hi)|choice(v1,v2,…)[;KEY2=…]"
DISTRIBUTIONS = ("uniform", "log10uniform", "choice")
# The search keys at their "no search" values: a group's program resets them (its fingerprint
# is that of the runs it trains, whichever search drew them).
NEUTRAL = {"search": "", "search_points": 100, "search_seed": 0, "search_score": "fid_classifier"}
# Not searchable: the seed, runs and search keys, and image_size (the data every point is scored
# against must be one set).
_NOT_SEARCHABLE = ("model", "family", "seed", "num_runs", "sweep", "sweep_zip", "image_size",
                   *NEUTRAL)
_RANGE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([A-Za-z0-9_]+)\s*\((.*)\)\s*$")


@dataclasses.dataclass(frozen=True)
class Range:
  """One key's range: `kind` in DISTRIBUTIONS, `args` its numbers."""

  key: str
  kind: str
  args: tuple[float, ...]

  def draw(self, rng: np.random.Generator) -> float:
    if self.kind == "choice":
      return self.args[int(rng.integers(len(self.args)))]
    value = float(rng.uniform(self.args[0], self.args[1]))
    return 10.0 ** value if self.kind == "log10uniform" else value

  def __str__(self) -> str:
    return f"{self.key}={self.kind}({','.join(f'{a:g}' for a in self.args)})"


def parse(text: str) -> tuple[Range, ...]:
  """config.search → its ranges in the order written; () for "". One-line UserError for a
  malformed part, an unknown distribution, a wrong number of arguments, lo > hi, a key given
  twice."""
  if not isinstance(text, str):
    raise UserError(f"config.search must be a string {SYNTAX!r}, got {text!r}")
  ranges, seen = [], set()
  for part in (p for p in text.split(";") if p.strip()):
    match = _RANGE.match(part)
    if not match:
      raise UserError(f"config.search={text!r} is malformed at {part.strip()!r}: write {SYNTAX}")
    key, kind, inside = match.groups()
    if kind not in DISTRIBUTIONS:
      raise UserError(f"config.search: {key}={kind}(…) is not a distribution we draw: use one "
                      f"of {', '.join(DISTRIBUTIONS)}")
    try:
      args = tuple(float(a) for a in inside.split(","))
    except ValueError:
      raise UserError(f"config.search: the arguments of {key}={kind}({inside}) must be "
                      f"numbers") from None
    if not all(math.isfinite(a) for a in args):
      raise UserError(f"config.search: the arguments of {key}={kind}({inside}) must be finite")
    if kind != "choice" and len(args) != 2:
      raise UserError(f"config.search: {key}={kind}({inside}) takes two numbers, lo and hi")
    if kind != "choice" and args[0] > args[1]:
      raise UserError(f"config.search: {key}={kind}({inside}) has lo > hi: write "
                      f"{kind}({args[1]:g},{args[0]:g})")
    if key in seen:
      raise UserError(f"config.search names {key} twice: give each key one range")
    seen.add(key)
    ranges.append(Range(key, kind, args))
  return tuple(ranges)


def _typed(config, key: str, value: float):
  """`value` as config[key]'s type: True/False for switches, int for integers, else float."""
  if isinstance(config[key], bool):
    return bool(value)
  if isinstance(config[key], int):
    return int(value)
  return float(value)


def _check_key(config, r: Range, sweepable: tuple[str, ...]) -> None:
  """One-line UserError for a key that is not a searchable setting of this model, or a range
  its type cannot take (a switch: choice of 0 and 1; an integer: choice of integers)."""
  if r.key not in config:
    raise UserError(f"config.search: {r.key} is not a setting of model {config.model!r}; "
                    f"per-run keys: {', '.join(sweepable)}; program-changing keys: numbers "
                    f"and switches of configs/{config.model}.py (e.g. n_critic)")
  if r.key in _NOT_SEARCHABLE or r.key in _resumable_keys():
    raise UserError(f"config.search: {r.key} cannot be searched (it says how long, how often, "
                    f"which runs or which data, not how a point trains)")
  value = config[r.key]
  if r.key in sweepable:
    return
  if not isinstance(value, (bool, int, float)):
    raise UserError(f"config.search: {r.key}={value!r} is not a number or a switch; only those "
                    f"can be searched")
  if isinstance(value, (bool, int)) and r.kind != "choice":
    what = "a switch" if isinstance(value, bool) else "an integer"
    raise UserError(f"config.search: {r.key} is {what}: search it with choice(…), not {r.kind}")
  if isinstance(value, bool) and not set(r.args) <= {0.0, 1.0}:
    raise UserError(f"config.search: {r.key} is a switch: its choice takes 0 and 1, got {r}")
  if isinstance(value, int) and not all(a == int(a) for a in r.args):
    raise UserError(f"config.search: {r.key} is an integer: its choice takes integers, got {r}")


def _resumable_keys() -> tuple[str, ...]:
  from genimg_jax.train import run_config  # pylint: disable=import-outside-toplevel  # Cycle.

  return run_config.RESUMABLE_KEYS


def kinds(config, sweepable: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
  """(per-run keys, program-changing keys) of config.search, each in the order written."""
  keys = [r.key for r in parse(config.search)]
  return (tuple(k for k in keys if k in sweepable),
          tuple(k for k in keys if k not in sweepable))


def draw_points(config) -> list[dict]:
  """The search's points, {key: value} each: point 0 the config's own values, the others drawn
  from config.search_seed as the module docstring says (values typed as the config's)."""
  ranges = parse(config.search)
  points = [{r.key: config[r.key] for r in ranges}]
  rng = np.random.default_rng(config.search_seed)
  for _ in range(1, config.search_points):
    points.append({r.key: _typed(config, r.key, r.draw(rng)) for r in ranges})
  return points


@dataclasses.dataclass(frozen=True)
class Group:
  """Points that share every program-changing value: one runs-axis program."""

  index: int
  program: dict  # {program-changing key: value} of every point in it.
  points: tuple[int, ...]  # Search point indices, in order; run j·num_runs + s is points[j].


def group(points: list[dict], program_keys: tuple[str, ...]) -> list[Group]:
  """The points grouped by their program-changing values, groups in order of first point."""
  found: dict[tuple, list[int]] = {}
  for i, point in enumerate(points):
    found.setdefault(tuple(point[k] for k in program_keys), []).append(i)
  return [Group(g, dict(zip(program_keys, values)), tuple(members))
          for g, (values, members) in enumerate(found.items())]


def _steps(config, point: dict) -> int:
  """num_steps of a point: the same number of real batches (D updates) as the config's."""
  if "n_critic" not in point or point["n_critic"] == config.n_critic or point["n_critic"] < 1:
    return config.num_steps  # (n_critic < 1 is refused by the point's check.)
  return max(1, round(config.num_steps * config.n_critic / int(point["n_critic"])))


def _without_search(config):
  """A copy of `config` with the search keys at their neutral values."""
  single = config.copy_and_resolve_references()
  with single.unlocked():
    for key, value in NEUTRAL.items():
      single[key] = value
  return single


def point_config(config, point: dict):
  """The config of one point trained alone (one run per seed, no search)."""
  single = _without_search(config)
  for key, value in point.items():
    single[key] = _typed(config, key, value)
  single.num_steps = _steps(config, point)
  return single


def group_config(config, the_group: Group, points: list[dict], sweepable: tuple[str, ...]):
  """The runs-axis program of `the_group`: its program-changing values set, its points as
  explicit sweep points (sweep_zip), num_runs seeds each. Without per-run keys in the search
  the points still get a runs axis of their own: the first sweepable key at the config's
  value, once per point."""
  per_run, _ = kinds(config, sweepable)
  single = _without_search(config)
  for key, value in the_group.program.items():
    single[key] = _typed(config, key, value)
  single.num_steps = _steps(config, the_group.program)
  keys = per_run or sweepable[:1]
  single.sweep = ";".join(
      f"{k}=" + ",".join(repr(float(points[i].get(k, config[k]))) for i in the_group.points)
      for k in keys)
  single.sweep_zip = True
  return single


def check_config(config, sweepable: tuple[str, ...], validate_run) -> None:
  """One-line UserError for a bad search: its keys and ranges (parse, _check_key), the search's
  own keys, a search combined with a sweep, or a drawn point that `validate_run(its config)`
  rejects (e.g. adam_b1 = 1)."""
  checks.positive_int(config, "search_points")
  checks.non_negative_int(config, "search_seed")
  ranges = parse(config.search)
  if not ranges:
    return
  if config.sweep.strip():
    raise UserError("config.search and config.sweep cannot be combined: give the swept key a "
                    "choice(…) range in the search")
  if config.distributed:
    raise UserError("config.search trains its groups one after another in one process: "
                    "drop distributed=True")
  from genimg_jax.evaluation import point_scores  # pylint: disable=import-outside-toplevel

  checks.choice(config, "search_score", tuple(point_scores.SCORES))
  if config.search_score in point_scores.INCEPTION and not config.inception_weights:
    raise UserError(f"config.search_score={config.search_score!r} needs "
                    f"--config.inception_weights=PATH (a TorchScript inception-2015-12-05.pt): "
                    f"set it or score with fid_classifier")
  if config.search_score in point_scores.INCEPTION and not os.path.isfile(
      config.inception_weights):  # Checked now, not after the first group has trained.
    raise UserError(f"Inception weights file {config.inception_weights} not found: pass "
                    f"--config.inception_weights=PATH of an inception-2015-12-05.pt")
  for r in ranges:
    _check_key(config, r, sweepable)
  for i, point in enumerate(draw_points(config)):
    try:
      validate_run(point_config(config, point))
    except UserError as e:
      values = ", ".join(f"{k}={v}" if isinstance(v, bool) else f"{k}={v:g}"
                         for k, v in point.items())
      raise UserError(f"config.search point {i} ({values}): {e}") from None
