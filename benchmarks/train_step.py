"""Training-step throughput: samples/s, FLOP/s, % of the measured matmul peak, compile time,
memory and scaling over devices, for every model in configs/.

  python benchmarks/train_step.py [--models gan,dcgan,...] [--batch_sizes 64,256,1024]
      [--devices 1,2,4,8 | all] [--parallel jit,pmap] [--dtypes float32,bfloat16]
      [--channels 1] [--runs 1,2,4,8] [--steps_per_dispatch K] [--windows 5]
      [--time_budget_s S] [--quick] [--out FILE.json]

This process only orchestrates: every (device count, model, dtype) group runs in its own
child process (`benchmarks/rows.py`), because the CPU device count is fixed when JAX starts
(`--xla_force_host_platform_device_count`) and the allocator's peak is per process. Each row runs
the real compiled path (`compiled.build`: K steps per jitted `lax.scan`, state donated,
batches drawn on the device) on synthetic data. `--runs R,…` also times R runs vmapped in one
program (config.num_runs): samples/s of every run together, per run, and the speed-up over R
runs one after another (R × the time of one). Writes JSON and a Markdown table (same name,
`.md`) and prints the table. See benchmarks/README.md for the columns and the FLOP counts.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from benchmarks import ROW_MARK, save_result  # noqa: E402  (this process never imports jax)
from genimg_jax import config_cli  # noqa: E402

PRIORITY = ("gan", "gan_seed", "vae", "dcgan", "conv_vae", "sngan", "wgan_gp", "dcgan32",
            "lsgan", "cgan", "cvae", "beta_vae", "iwae")  # Default order; others follow, sorted.
DEFAULT_BATCH_SIZES = (64, 256, 1024)
DEFAULT_STEPS_PER_DISPATCH = 10  # K: amortises the host dispatch; lowered for slow steps.
DEFAULT_WINDOWS = 5  # Timing windows per row; the median is reported.
MIN_WINDOW_S = 1.0  # A window runs R dispatches, R chosen so that it lasts at least this long.
MAX_TIMING_S = 30.0  # Fewer windows when they would take longer (a slow row is still timed).
NUM_EXAMPLES = 8192  # Synthetic set size (raised to n_critic × the largest batch if needed).
CPU_MATMUL_SIZES = (1024, 2048, 4096)  # Square matmul sizes for the peak, CPU.
ACCELERATOR_MATMUL_SIZES = (4096, 8192, 16384)  # Same, GPU/TPU (bigger tiles to saturate).
MATMUL_REPEATS = 5  # Timed calls per matmul size; the median is used.
CPU_MAX_EST_STEP_S = 30.0  # CPU: skip rows guessed slower than this per step (0: never skip).
QUICK = dict(batch_sizes=(8,), windows=1, steps_per_dispatch=2, min_window_s=0.0,
             max_timing_s=5.0, matmul_sizes=(256,), matmul_repeats=2)  # --quick: a smoke run.
CHILD_GRACE_S = 15.0  # A child still running this long after the budget's end is stopped.
DEFAULT_OUT = os.path.join(REPO_ROOT, "benchmarks", "results", "train_step.json")
MIB = 2**20
GIGA = 1e9


def discover_models() -> list[str]:
  """Every model of configs/ (config_cli.available_models), in PRIORITY order."""
  rank = {name: i for i, name in enumerate(PRIORITY)}
  return sorted(config_cli.available_models(), key=lambda n: (rank.get(n, len(rank)), n))


def child_env(backend: str | None, devices: int | None) -> dict:
  """The child's environment: on CPU, exactly `devices` host devices; on GPUs, no
  preallocation (so `peak_bytes_in_use` is the row's real use, and processes don't collide)."""
  env = dict(os.environ)
  env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  if backend == "cpu" and devices:
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", ""))
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}".strip()
  return env


def run_child(spec: dict, env: dict, timeout_s: float | None) -> tuple[list[dict], str]:
  """Runs benchmarks/rows.py with `spec`; returns (its JSON records, the tail of its stderr)."""
  records = []
  with tempfile.TemporaryFile("w+") as err:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.rows", json.dumps(spec)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
      out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
      proc.kill()
      out, _ = proc.communicate()
    for line in out.splitlines():
      if line.startswith(ROW_MARK):
        records.append(json.loads(line[len(ROW_MARK):]))
      elif line.strip():
        print(line, file=sys.stderr)
    err.seek(0)
    tail = err.read()[-2000:]
  if proc.returncode not in (0, None) and not records:
    print(tail, file=sys.stderr)
  return records, tail


def device_counts(text: str, backend: str, available: int) -> list[int]:
  """--devices: "all" = 1, 2, 4, … up to the devices present (and their count); else a list."""
  if text == "all":
    counts = [n for n in (2**i for i in range(12)) if n <= available]
    return sorted(set(counts + [available]))
  counts = [int(x) for x in text.split(",") if x]
  if backend != "cpu" and max(counts) > available:
    sys.exit(f"--devices {text}: only {available} {backend} device(s) here")
  return counts


def finish_rows(rows: list[dict], info: dict) -> None:
  """Adds % of peak, probe %, the XLA ratio and the scaling efficiency to each measured row."""
  per_device_peak = {}
  for dtype, peak in info["matmul_peaks"].items():
    probes = [r["matmul_probe_flops_per_s"] for r in rows
              if "steps_per_s" in r and r["dtype"] == dtype]
    per_device_peak[dtype] = max([peak["per_device_flops_per_s"]] + probes)
  info["peak_per_device_flops_per_s"] = per_device_peak
  xla = {(r["model"], r["batch_size"]): r["xla_flops_per_step"] for r in rows
         if r.get("xla_flops_per_step")}
  for r in rows:
    r.setdefault("runs", 1)
  base = {(r["model"], r["parallel"], r["dtype"], r["batch_size"], r["runs"]): r for r in rows
          if "steps_per_s" in r and r["devices"] == 1}
  alone = {(r["model"], r["parallel"], r["dtype"], r["batch_size"], r["devices"]): r
           for r in rows if "steps_per_s" in r and r["runs"] == 1}  # R runs one after another.
  for r in rows:
    if "steps_per_s" not in r:
      continue
    scale = 1 if info["backend"] == "cpu" else r["devices"]  # Fake CPU devices share the host.
    r["peak_flops_per_s"] = per_device_peak[r["dtype"]] * scale
    r["percent_of_peak"] = 100.0 * r["achieved_flops_per_s"] / r["peak_flops_per_s"]
    r["probe_percent_of_peak"] = 100.0 * r["matmul_probe_flops_per_s"] / per_device_peak[r["dtype"]]
    r["xla_flops_per_step"] = r.get("xla_flops_per_step") or (
        xla.get((r["model"], r["batch_size"])) if r["runs"] == 1 else None)  # R > 1: not counted.
    r["xla_ratio"] = r["xla_counts_critic_loop_once"] = None
    if r["xla_flops_per_step"]:
      full, once = r["analytic_valid_flops_per_step"], r["analytic_valid_flops_one_critic"]
      # XLA counts a loop's body once: with n_critic in a loop, compare with one critic step.
      r["xla_counts_critic_loop_once"] = (full != once and abs(r["xla_flops_per_step"] / once - 1)
                                          < abs(r["xla_flops_per_step"] / full - 1))
      r["xla_ratio"] = r["xla_flops_per_step"] / (once if r["xla_counts_critic_loop_once"]
                                                  else full)
    one = base.get((r["model"], r["parallel"], r["dtype"], r["batch_size"], r["runs"]))
    r["scaling_efficiency"] = (r["samples_per_s"] / (r["devices"] * one["samples_per_s"])
                               if one else None)
    single = alone.get((r["model"], r["parallel"], r["dtype"], r["batch_size"], r["devices"]))
    r["runs_speedup"] = r["samples_per_s"] / single["samples_per_s"] if single else None


def _fmt(value, scale=1.0, spec=",.1f"):
  return "n/a" if value is None else format(value / scale, spec)


def markdown_table(result: dict) -> str:
  """The measured rows as a Markdown table, headed by the device and its peaks; then the rows
  that were skipped or failed, with the reason."""
  info = result["device"]
  peaks = "; ".join(
      f"{dtype} {p['per_device_flops_per_s'] / GIGA:,.1f} GFLOP/s ({p['best_size']}² matmul)"
      for dtype, p in info["matmul_peaks"].items())
  lines = [
      f"Device: {info['device_count']} × {info['device_kind']} ({info['backend']}), "
      f"jax {info['jax_version']}, flax {info['flax_version']}, {result['timestamp']}",
      f"Measured matmul peak per device: {peaks}; 1-min load average "
      f"{result['load_average_1min']:.1f} on {result['host_cpu_count']} CPUs; "
      f"images {result['image_note']}; wall time {result['wall_s']:.0f} s",
      "",
      "| model | devices | parallel | dtype | batch | runs | K | compile s | steps/s | samples/s "
      "| per run | × R=1 | ms/step | GFLOP/step (matmul) | GFLOP/step (XLA) | XLA ÷ valid "
      "| GFLOP/s | % of peak | probe % | scaling % | XLA mem MiB | peak mem MiB |",
      "|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ]
  order = {m: i for i, m in enumerate(dict.fromkeys(r["model"] for r in result["rows"]))}
  done = sorted((r for r in result["rows"] if "steps_per_s" in r), key=lambda r: (
      order[r["model"]], r["dtype"], r["parallel"], r["batch_size"], r["devices"], r["runs"]))
  for r in done:
    peak = _fmt(r["peak_device_bytes"], MIB)
    if r["peak_device_bytes"] is not None and not r["peak_device_bytes_exact"]:
      peak = "≤" + peak
    ratio = _fmt(r["xla_ratio"], 1, ".3f") + ("¹" if r["xla_counts_critic_loop_once"] else "")
    lines.append(
        f"| {r['model']} | {r['devices']} | {r['parallel']} | {r['dtype']} | {r['batch_size']} "
        f"| {r['runs']} | {r['steps_per_dispatch']} | {r['compile_s']:.1f} "
        f"| {r['steps_per_s']:,.1f} | {r['samples_per_s']:,.0f} "
        f"| {r.get('per_run_samples_per_s', r['samples_per_s']):,.0f} "
        f"| {_fmt(r['runs_speedup'], 1, '.2f')} | {r['ms_per_step']:.2f} "
        f"| {r['analytic_matmul_flops_per_step'] / GIGA:.3f} "
        f"| {_fmt(r['xla_flops_per_step'], GIGA, '.3f')} | {ratio} "
        f"| {r['achieved_flops_per_s'] / GIGA:,.1f} | {r['percent_of_peak']:.1f} "
        f"| {r['probe_percent_of_peak']:.0f} | {_fmt(r['scaling_efficiency'], 0.01, '.0f')} "
        f"| {_fmt(r['xla_memory_bytes'], MIB)} | {peak} |")
  if any(r.get("xla_counts_critic_loop_once") for r in done):
    lines += ["", "¹ XLA counts the critic loop's body once: ratio against one critic step."]
  other = [r for r in result["rows"] if "steps_per_s" not in r]
  if other:
    lines += ["", "Not measured:", ""]
    lines += [f"- {r['model']}, {r['devices']} device(s), {r['parallel']}, {r['dtype']}, batch "
              f"{r['batch_size']}, {r.get('runs', 1)} run(s): "
              f"{'skipped' if 'skipped' in r else 'ERROR'}: "
              f"{r.get('skipped') or r.get('error')}" for r in other]
  return "\n".join(lines) + "\n"


def result_header(info: dict, opts, started: float) -> dict:
  """Everything in the JSON besides the rows."""
  return {
      "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "device": info, "host_cpu_count": os.cpu_count(),
      "load_average_1min": os.getloadavg()[0], "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "image_note": f"28×28×{opts.channels}, or config.image_size² × {opts.channels}",
      "options": {k: v for k, v in vars(opts).items() if k != "out"},
      "wall_s": time.time() - started,
  }


def write_outputs(path: str, result: dict) -> str:
  """Completes the rows and writes the JSON and the Markdown table (also after each group, so
  a run stopped from outside leaves what it measured); returns the table."""
  finish_rows(result["rows"], result["device"])
  return save_result(path, result, markdown_table(result))


def _list(text: str) -> tuple[str, ...]:
  return tuple(x for x in text.split(",") if x)


def _int_list(text: str) -> tuple[int, ...]:
  return tuple(int(x) for x in _list(text))


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add = parser.add_argument
  add("--out", default=DEFAULT_OUT, help="JSON path; the table goes next to it as .md")
  add("--models", type=_list, default=None, help="configs/<name>.py list (default: all)")
  add("--batch_sizes", type=_int_list, default=None, help="global batch sizes")
  add("--devices", default="1", help='device counts, e.g. 1,2,4,8, or "all"')
  add("--parallel", type=_list, default=("jit",), help="jit and/or pmap")
  add("--dtypes", "--dtype", type=_list, default=("float32",), help="float32 and/or bfloat16")
  add("--channels", type=int, default=1, help="image channels (3: CIFAR-like colour rows)")
  add("--runs", type=_int_list, default=(1,),
      help="runs vmapped in one program (config.num_runs), e.g. 1,2,4,8; R = 1 is always timed")
  add("--steps_per_dispatch", type=int, default=None, help="K steps per scan (upper bound)")
  add("--windows", type=int, default=None, help="timing windows per row (median)")
  add("--min_window_s", type=float, default=None, help="shortest timing window")
  add("--max_timing_s", type=float, default=None, help="fewer windows past this per row")
  add("--max_est_step_s", type=float, default=None,
      help="skip rows guessed slower per step (default: 30 on CPU, none on accelerators)")
  add("--time_budget_s", type=float, default=0.0, help="stop starting rows after this (0: none)")
  add("--quick", action="store_true", help="smoke run: batch 8, K = 2, 1 window")
  args = parser.parse_args(argv)
  args.runs = tuple(sorted({1, *args.runs}))  # The speed-up needs R = 1 beside the others.
  if min(args.runs) < 1:
    parser.error(f"--runs values must be positive, got {args.runs}")
  defaults = QUICK if args.quick else dict(
      batch_sizes=DEFAULT_BATCH_SIZES, windows=DEFAULT_WINDOWS, min_window_s=MIN_WINDOW_S,
      steps_per_dispatch=DEFAULT_STEPS_PER_DISPATCH, max_timing_s=MAX_TIMING_S,
      matmul_sizes=None, matmul_repeats=MATMUL_REPEATS)
  for name, value in defaults.items():
    if getattr(args, name, None) is None:
      setattr(args, name, value)
  bad = [p for p in args.parallel if p not in ("jit", "pmap")]
  bad += [d for d in args.dtypes if d not in ("float32", "bfloat16")]
  if bad:
    parser.error(f"unknown --parallel / --dtypes value(s) {bad}")
  return args


def main(argv=None) -> dict:
  opts = parse_args(argv)
  started = time.time()
  deadline = started + opts.time_budget_s if opts.time_budget_s else 0.0
  models = opts.models or discover_models()
  info_spec = {"mode": "info", "dtypes": list(opts.dtypes), "matmul_repeats": opts.matmul_repeats,
               "matmul_sizes": opts.matmul_sizes, "cpu_sizes": CPU_MATMUL_SIZES,
               "accelerator_sizes": ACCELERATOR_MATMUL_SIZES}
  records, tail = run_child(info_spec, child_env(None, None), None)
  if not records:
    sys.exit(f"the device probe failed:\n{tail}")
  info = records[0]
  devices = device_counts(opts.devices, info["backend"], info["device_count"])
  max_est = opts.max_est_step_s
  if max_est is None:
    max_est = CPU_MAX_EST_STEP_S if info["backend"] == "cpu" and not opts.quick else 0.0
  peaks = {d: info["matmul_peaks"][d] for d in info["matmul_peaks"]}
  groups = [(n, m, d) for d in opts.dtypes for n in devices for m in models]
  # In this order (a time budget drops the last ones): dtype, device count, model.
  rows = []
  for n, model, dtype in groups:
    keys = {"model": model, "devices": n, "dtype": dtype}
    cells = [(b, p, r) for b in opts.batch_sizes for p in opts.parallel for r in opts.runs]
    if deadline and time.time() >= deadline:
      rows += [{**keys, "parallel": p, "batch_size": b, "runs": r, "skipped": "time budget"}
               for b, p, r in cells]
      continue
    spec = {"mode": "rows", **keys, "parallels": list(opts.parallel),
            "batch_sizes": list(opts.batch_sizes), "runs": list(opts.runs),
            "channels": opts.channels, "steps_per_dispatch": opts.steps_per_dispatch,
            "windows": opts.windows, "min_window_s": opts.min_window_s,
            "max_timing_s": opts.max_timing_s, "max_est_step_s": max_est,
            "matmul_repeats": opts.matmul_repeats, "num_examples": NUM_EXAMPLES,
            "peaks": peaks, "backend": info["backend"], "deadline": deadline,
            "xla_check": dtype == opts.dtypes[0] and n == devices[0]}
    timeout = deadline + CHILD_GRACE_S - time.time() if deadline else None
    got, tail = run_child(spec, child_env(info["backend"], n), timeout)
    reported = {(r["batch_size"], r["parallel"], r["runs"]) for r in got}
    why = tail.strip().splitlines()[-1][:300] if tail.strip() else "no output"
    got += [{**keys, "parallel": p, "batch_size": b, "runs": r,
             **({"skipped": "time budget (stopped)"} if deadline and time.time() >= deadline
                else {"error": f"child process died: {why}"})}
            for b, p, r in cells if (b, p, r) not in reported]
    for r in got:
      status = (f"{r['samples_per_s']:,.0f} samples/s" if "steps_per_s" in r
                else r.get("skipped") or "ERROR " + r.get("error", ""))
      print(f"{model} ×{n} {r['parallel']} {dtype} batch {r['batch_size']} runs {r['runs']}: "
            f"{status}", flush=True)
    rows += got
    write_outputs(opts.out, {**result_header(info, opts, started), "rows": rows})
  result = {**result_header(info, opts, started), "rows": rows}
  print(write_outputs(opts.out, result))
  result["failed"] = any("error" in r for r in rows)
  return result


if __name__ == "__main__":
  sys.exit(1 if main()["failed"] else 0)
