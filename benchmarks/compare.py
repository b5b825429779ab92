"""JAX against PyTorch on the same models, batch sizes and synthetic data, in one process: the
project's compiled K-step path (benchmarks/rows.py) and the PyTorch reference
(benchmarks/torch_reference.py), eager and under torch.compile, timed in alternating windows.

  python benchmarks/compare.py --models gan_seed,vae --batch_sizes 64,256 --windows 5 \
      --modes eager,compile --device cpu [--out benchmarks/results/compare.json]

Equal work is checked, not assumed: per network (G and D, or encoder and decoder) the PyTorch
parameter count must equal the Flax one (from the family's init state), and the forward
multiply-adds counted by torch layer hooks must equal benchmarks/flops.py's; a mismatch fails
the row (exit status 1). Writes the JSON and a Markdown table next to it (.md) after each row.
"""

import argparse
import datetime
import math
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

from benchmarks import save_result  # noqa: E402
from benchmarks import torch_reference as ref  # Imports neither torch nor JAX.

DEFAULT_OUT = os.path.join(REPO_ROOT, "benchmarks", "results", "compare.json")
DEFAULT_STEPS_PER_DISPATCH = 10  # K of the JAX side (lowered so a dispatch fits a window).
GIGA = 1e9


class WorkMismatch(Exception):
  """The two sides' networks differ in parameters or multiply-adds."""


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add = parser.add_argument
  add("--out", default=DEFAULT_OUT, help="JSON path; the Markdown table goes next to it")
  add("--steps_per_dispatch", type=int, default=DEFAULT_STEPS_PER_DISPATCH,
      help="JAX: steps per compiled lax.scan call (an upper bound)")
  add("--settle_s", type=float, default=0.2, help="pause before each window, so the other "
      "framework's idle threads stop spinning first")
  add("--rows", default="", help="model:batch pairs, in this order (instead of --models × "
      "--batch_sizes), e.g. gan_seed:64,dcgan:256")
  opts = ref.parse_args(argv, parser=parser)
  try:
    pairs = [(m, int(b)) for m, b in (cell.split(":") for cell in opts.rows.split(",") if cell)]
  except ValueError:
    parser.error(f"--rows {opts.rows!r}: give model:batch pairs, e.g. gan_seed:64,dcgan:256")
  if any(m not in ref.MODELS for m, _ in pairs):
    parser.error(f"--rows {opts.rows!r}: models are {', '.join(ref.MODELS)}")
  opts.cells = pairs or [(m, b) for m in opts.models for b in sorted(opts.batch_sizes)]
  return opts


def jax_side(device: str):
  """Imports the JAX side after the environment is set (CPU only for --device cpu; no GPU
  preallocation, since PyTorch shares the device)."""
  if device == "cpu":
    os.environ["JAX_PLATFORMS"] = "cpu"
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  import jax

  from benchmarks import flops, rows
  from genimg_jax import sharding
  from genimg_jax.train.families import build_family
  if device == "cuda" and jax.default_backend() != "gpu":
    print(f"compare.py --device cuda: JAX's backend is {jax.default_backend()!r}, not gpu",
          file=sys.stderr)
    sys.exit(ref.NO_TORCH_EXIT)
  return jax, flops, rows, sharding, build_family


def flax_counts(jax, flops, family, config, image_shape) -> dict:
  """{"params": {role: n}, "macs": {role: forward MACs per example}, "step_macs": n} from the
  family's init state (under eval_shape) and benchmarks/flops.py's trace."""
  state = jax.eval_shape(lambda key: family.init_state(key, 1, image_shape),
                         jax.random.PRNGKey(0))
  size = lambda tree: sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree))
  if config.family == "gan":
    params = {"generator": size(state.g_params["params"]),
              "discriminator": size(state.d_params["params"])}
  else:
    params = {role: size(state.params["params"][role]) for role in ("encoder", "decoder")}
  nominal = flops.family_networks(family, image_shape)["nominal"]
  return {"params": params, "macs": {role: nominal[role].forward for role in params},
          "step_macs": flops.step_macs(config, nominal)}


def check_equal_work(flax: dict, torch_counts: dict) -> None:
  """WorkMismatch naming each network whose parameters or forward MACs differ."""
  wrong = [f"{role} {what}: PyTorch {torch_counts[what].get(role, 0):,} vs Flax {n:,}"
           for what in ("params", "macs") for role, n in flax[what].items()
           if torch_counts[what].get(role) != n]
  if wrong:
    raise WorkMismatch("the PyTorch and Flax networks differ: " + "; ".join(wrong))


class JaxTimer:
  """The project's compiled K-step function for one row (rows.make_multi_step), timed."""

  def __init__(self, mods, family, config, image_shape, batch_size, num_examples, k):
    jax, _, rows, sharding, _ = mods
    self.jax, self.k = jax, k
    mesh = sharding.make_mesh(jax.devices()[:1])
    self.data = rows.synthetic_data(mesh, num_examples, image_shape)
    init = jax.jit(lambda key: family.init_state(key, num_examples, image_shape),
                   out_shardings=sharding.replicated(mesh))
    self.state = init(jax.random.PRNGKey(rows.SEED))
    start = time.perf_counter()  # AOT lower + compile, as benchmarks/rows.py times it.
    multi = rows.make_multi_step(family, config, batch_size, mesh, num_examples)
    self.fn = multi.function(k).lower(self.state, self.data).compile()
    self.compile_s = time.perf_counter() - start
    self.dispatches = 1

  def _run(self, dispatches: int) -> float:
    start = time.perf_counter()
    for _ in range(dispatches):
      self.state, metrics = self.fn(self.state, self.data)
    self.jax.block_until_ready((self.state, metrics))
    return time.perf_counter() - start

  def warm_up(self, min_window_s: float) -> dict:
    warmup_s = self._run(1)
    dispatch_s = self._run(1)
    self.dispatches = max(1, math.ceil(min_window_s / max(dispatch_s, 1e-9)))
    return {"compile_s": self.compile_s, "warmup_s": warmup_s, "steps_per_dispatch": self.k,
            "first_step_s": dispatch_s / self.k}

  def window(self) -> float:
    """One timing window; its steps/s."""
    return self.dispatches * self.k / self._run(self.dispatches)


def measure_row(mods, torch, torch_steps, model, batch_size, opts, deadline) -> dict:
  """Both sides of one (model, batch): equal-work check, compile and warm up, then the
  alternating windows (JAX, each torch mode, repeat); medians and ratios."""
  jax, flops, rows, _, build_family = mods
  config = rows.load_config(model, "float32", "jit")
  image_shape = rows.image_shape_of(config, 1)
  assert image_shape == ref.image_shape_of(config), (image_shape, ref.image_shape_of(config))
  family = build_family(config, image_shape, rows.NUM_CLASSES)
  flax = flax_counts(jax, flops, family, config, image_shape)
  device = ref.torch_device(torch, opts.device)
  counts = ref.torch_counts(ref.load_config(model), image_shape, device)
  row = {"params": flax["params"], "param_count": sum(flax["params"].values()),
         "forward_macs_per_example": flax["macs"],
         "analytic_flops_per_step": 2 * flax["step_macs"] * batch_size,
         "batches_per_step": family.batches_per_step}
  check_equal_work(flax, counts)
  num_examples = ref.num_examples(config, [b for m, b in opts.cells if m == model])
  data = torch_steps.synthetic_images(num_examples, image_shape, device)
  timers, sides = {}, {}
  for mode in opts.modes:
    if deadline and time.time() >= deadline:
      sides[mode] = {"skipped": "time budget"}
      continue
    trainer = torch_steps.build_trainer(ref.load_config(model), image_shape, batch_size, data,
                                        mode == "compile", opts.compile_mode)
    timers[mode] = torch_steps.Timer(trainer)
    sides[mode] = timers[mode].warm_up(opts.min_window_s)
  # One JAX dispatch ≈ one window, from the first torch step's time (a guess, K ≥ 1).
  guess_s = min([s["first_step_s"] for s in sides.values() if "first_step_s" in s] or [0.0])
  k = opts.steps_per_dispatch
  if guess_s > 0:
    k = max(1, min(k, int(max(opts.min_window_s, 0.05) / guess_s)))
  timers["jax"] = JaxTimer(mods, family, config, image_shape, batch_size, num_examples, k)
  sides["jax"] = timers["jax"].warm_up(opts.min_window_s)
  order = ["jax"] + [m for m in opts.modes if m in timers]
  rates = {name: [] for name in order}
  for window in range(opts.windows):
    if window and deadline and time.time() >= deadline:
      break
    for name in order:
      time.sleep(opts.settle_s)
      rates[name].append(timers[name].window())
  bps = family.batches_per_step
  for name in order:
    rate = statistics.median(rates[name])
    sides[name].update(steps_per_s=rate, samples_per_s=rate * batch_size * bps,
                       steps_per_s_windows=rates[name])
  for mode in opts.modes:
    if "samples_per_s" in sides[mode]:
      row[f"jax_over_{mode}"] = sides["jax"]["samples_per_s"] / sides[mode]["samples_per_s"]
  row["sides"] = sides
  row["windows"] = len(rates["jax"])
  return row


def _fmt(value, spec=",.0f"):
  return "n/a" if value is None else format(value, spec)


def markdown_table(result: dict) -> str:
  """The rows as Markdown, headed by the device and versions; skipped and failed rows below."""
  h = result["header"]
  modes = result["options"]["modes"]
  names = {"eager": "PyTorch eager", "compile": f"torch.compile ({h['compile_mode']})"}
  lines = [
      (f"JAX {h['jax_version']} (flax {h['flax_version']}, {h['jax_backend']}: "
       f"{h['jax_device_kind']}) vs PyTorch {h['torch_version']} ({h['torch_device']}: "
       f"{h['torch_device_name']}, {h['torch_threads']} threads), float32, {h['timestamp']}"),
      (f"Medians over alternating windows (JAX, {', '.join(modes)}, repeat) of ≥ "
       f"{result['options']['min_window_s']:g} s; samples/s = real images per second "
       f"(batch × n_critic × steps/s); 1-min load average {h['load_average_1min']:.1f} on "
       f"{h['host_cpu_count']} CPUs; wall time {result['wall_s']:.0f} s"),
      "",
      "| model | batch | params | GFLOP/step | JAX samples/s | "
      + " | ".join(f"{names[m]} samples/s" for m in modes) + " | "
      + " | ".join(f"JAX ÷ {m}" for m in modes) + " | JAX compile s | "
      + " | ".join(f"{m} warm-up s" for m in modes) + " | windows |",
      "|---|--:|--:|--:|--:|" + "--:|" * (3 * len(modes)) + "--:|--:|",
  ]
  other = []
  for r in result["rows"]:
    if "sides" not in r:
      other.append(r)
      continue
    s = r["sides"]
    cells = [r["model"], str(r["batch_size"]), f"{r['param_count']:,}",
             f"{r['analytic_flops_per_step'] / GIGA:.3f}", _fmt(s["jax"]["samples_per_s"])]
    cells += [_fmt(s[m].get("samples_per_s")) for m in modes]
    cells += [_fmt(r.get(f"jax_over_{m}"), ".2f") for m in modes]
    cells.append(f"{s['jax']['compile_s']:.1f}")
    cells += [_fmt(s[m].get("warmup_s"), ".1f") for m in modes]
    cells.append(str(r["windows"]))
    lines.append("| " + " | ".join(cells) + " |")
    other += [{**r, "skipped": f"{m}: {s[m]['skipped']}"} for m in modes if "skipped" in s[m]]
  if other:
    lines += ["", "Not measured:", ""]
    lines += [f"- {r['model']}, batch {r['batch_size']}: "
              f"{'skipped: ' + r['skipped'] if 'skipped' in r else 'ERROR: ' + r['error']}"
              for r in other]
  return "\n".join(lines) + "\n"


def header(mods, torch, torch_steps, opts) -> dict:
  """Device, versions and settings of the run."""
  jax = mods[0]
  import flax
  import optax
  device = ref.torch_device(torch, opts.device)
  return {
      "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "jax_version": jax.__version__, "flax_version": flax.__version__,
      "optax_version": optax.__version__, "jax_backend": jax.default_backend(),
      "jax_device_kind": jax.devices()[0].device_kind,
      "jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
      "torch_device": device.type, "torch_device_name": torch_steps.device_name(device),
      "cpu_name": torch_steps.device_name(torch.device("cpu")),
      "compile_mode": opts.compile_mode, "python_version": sys.version.split()[0],
      "host_cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      **ref.setup_torch(torch, device, opts.matmul_precision, opts.torch_threads),
  }


def write_outputs(path: str, result: dict) -> str:
  """Writes the JSON and the Markdown table (after every row); returns the table."""
  return save_result(path, result, markdown_table(result))


def main(argv=None) -> int:
  opts = parse_args(argv)
  torch = ref.require_torch("compare.py", opts.cold_compile)
  ref.torch_device(torch, opts.device, "compare.py")
  mods = jax_side(opts.device)
  from benchmarks import torch_steps
  started = time.time()
  deadline = started + opts.time_budget_s if opts.time_budget_s else 0.0
  result = {"header": header(mods, torch, torch_steps, opts), "wall_s": 0.0,
            "options": {k: v for k, v in vars(opts).items() if k not in ("out", "cells")},
            "rows": []}
  durations, failed = [], False
  for model, batch_size in opts.cells:
    keys = {"model": model, "batch_size": batch_size}
    start = time.time()
    guess = 1.5 * statistics.mean(durations) if durations else 0.0
    if deadline and start + guess > deadline:  # Start no row that would end past the budget.
      row = {**keys, "skipped": "time budget"}
    else:
      try:
        row = {**keys, **measure_row(mods, torch, torch_steps, model, batch_size, opts,
                                     deadline)}
      except Exception as e:  # noqa: BLE001 - one failed row must not stop the table.
        row, failed = {**keys, "error": f"{type(e).__name__}: {e}"[:600]}, True
        print(f"compare.py: {model} batch {batch_size}: ERROR {row['error']}",
              file=sys.stderr, flush=True)
      durations.append(time.time() - start)
    result["rows"].append(row)
    result["wall_s"] = time.time() - started
    status = row.get("skipped") or row.get("error") or ", ".join(
        f"{name} {side['samples_per_s']:,.0f}" for name, side in row["sides"].items()
        if "samples_per_s" in side) + " samples/s"
    print(f"{model} batch {batch_size}: {status}", flush=True)
    write_outputs(opts.out, result)
  print(write_outputs(opts.out, result))
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
