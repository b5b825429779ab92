"""Training-step throughput: steps/s, samples/s, FLOP/s and % of the device's measured matmul peak.

  python benchmarks/train_step.py [--out FILE.json] [--models gan,gan_seed,vae]
      [--batch_sizes 64,256,1024] [--steps_per_dispatch K] [--windows 5] [--quick]

Each (model, batch) row runs the real compiled training path (`compiled.MultiStep`: K steps per
jitted `lax.scan`, state donated, batches drawn on the device) on synthetic uint8 data resident
on the device. Writes JSON and a Markdown table (same name, `.md`) and prints the table.
See benchmarks/README.md for the columns and how FLOPs and % of peak are computed.
"""

import argparse
import datetime
import importlib
import json
import math
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from genimg_jax.train import compiled  # noqa: E402
from genimg_jax.train.families import build_family  # noqa: E402

IMAGE_SHAPE = (28, 28, 1)  # MNIST-sized images, as in training.
NUM_EXAMPLES = 8192  # Synthetic data set size on the device (must be ≥ the largest batch).
SEED = 0  # Seeds the synthetic data and the model state.
DEFAULT_MODELS = ("gan", "gan_seed", "vae")  # configs/<name>.py
DEFAULT_BATCH_SIZES = (64, 256, 1024)
DEFAULT_STEPS_PER_DISPATCH = 10  # K: amortises the host dispatch; keeps a batch-1024 window short.
DEFAULT_WINDOWS = 5  # Timing windows per row; the median is reported.
MIN_WINDOW_S = 1.0  # A window runs R dispatches, R chosen so that it lasts at least this long.
FLOPS_PER_MAC = 2  # One multiply-add = 2 FLOPs.
CPU_MATMUL_SIZES = (1024, 2048, 4096)  # Square float32 matmul sizes for the peak, CPU.
ACCELERATOR_MATMUL_SIZES = (4096, 8192, 16384)  # Same, GPU/TPU (needs bigger tiles to saturate).
MATMUL_REPEATS = 5  # Timed calls per matmul size; the median is used.
QUICK = dict(batch_sizes=(64,), windows=1, steps_per_dispatch=2, min_window_s=0.0,
             matmul_sizes=(256,), matmul_repeats=2)  # --quick: a smoke run, seconds not minutes.
DEFAULT_OUT = os.path.join(REPO_ROOT, "benchmarks", "results", "train_step.json")
MIB = 2**20
GIGA = 1e9


def _dense_macs(widths) -> int:
  """Multiply-adds of one example through Dense layers widths[0] → widths[1] → …."""
  return sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def analytic_matmul_flops(config, batch_size: int) -> int:
  """Matmul FLOPs of one training step (2·M·K·N per Dense; biases, activations, Adam ignored).

  Per Dense: forward 1×, weight gradient 1×, input gradient 1× its forward cost; the input
  gradient is skipped when nothing upstream is differentiated (first layer of the network
  being trained). GAN step: G forward (fakes, no grad), D fwd + weight grad + input grad
  (not first layer) on 2B rows; then G fwd + D fwd + D input grads (all layers, no D weight
  grads) + G weight grads + G input grads (not first layer) on B rows. VAE: fwd + bwd of
  encoder, (μ, log σ²) heads and decoder.
  """
  pixels = math.prod(IMAGE_SHAPE)
  if config.family == "gan":
    g = [config.latent_dim, *config.generator_hidden, pixels]
    d = [pixels, *config.discriminator_hidden, 1]
    g_first, d_first = g[0] * g[1], d[0] * d[1]
    d_update = _dense_macs(g) + 2 * (3 * _dense_macs(d) - d_first)
    g_update = 3 * _dense_macs(g) - g_first + 2 * _dense_macs(d)
    macs = d_update + g_update
  elif config.family == "vae":
    encoder = [pixels, *config.encoder_hidden]
    heads = encoder[-1] * 2 * config.latent_dim
    decoder = [config.latent_dim, *config.decoder_hidden, pixels]
    first = pixels * (encoder[1] if len(encoder) > 1 else 2 * config.latent_dim)
    macs = 3 * (_dense_macs(encoder) + heads + _dense_macs(decoder)) - first
  else:
    raise ValueError(f"no FLOP count for family {config.family!r}")
  return FLOPS_PER_MAC * macs * batch_size


def _xla_flops(compiled_fn):
  """'flops' of XLA's cost analysis (a dict in jax 0.10, a one-dict list in older jax), or None."""
  analysis = compiled_fn.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get("flops")
  return float(flops) if flops is not None else None


def _xla_memory_bytes(compiled_fn):
  """Arguments + outputs − donated aliases + temporaries of one call, per XLA; or None."""
  stats = compiled_fn.memory_analysis()
  if stats is None:
    return None
  return (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
          + stats.temp_size_in_bytes)


def _peak_device_bytes():
  """The allocator's peak bytes in use so far (process-wide), or None (e.g. CPU)."""
  stats = jax.devices()[0].memory_stats()
  return stats.get("peak_bytes_in_use") if stats else None


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_flops_per_s(n: int, repeats: int) -> float:
  """Median FLOP/s of a jitted float32 [n, n] @ [n, n] on the default device."""
  matmul = jax.jit(jnp.matmul)
  a, b = jax.random.normal(jax.random.PRNGKey(SEED), (2, n, n), jnp.float32)
  jax.block_until_ready(matmul(a, b))  # Compile and warm up.
  return FLOPS_PER_MAC * n**3 / _median_seconds(lambda: matmul(a, b), repeats)


def measure_matmul_peak(sizes, repeats: int) -> dict:
  """float32 square matmul FLOP/s of one device: the best size's median is the 'measured peak'."""
  rows = [{"size": n, "flops_per_s": matmul_flops_per_s(n, repeats)} for n in sizes]
  best = max(rows, key=lambda r: r["flops_per_s"])
  return {"per_device_flops_per_s": best["flops_per_s"], "best_size": best["size"],
          "sizes": rows, "dtype": "float32", "repeats": repeats}


def synthetic_data(mesh) -> dict:
  """Random {"image": uint8, "label": int32} data, placed for the compiled step (every device)."""
  rng = np.random.default_rng(SEED)
  images = rng.integers(0, 256, (NUM_EXAMPLES, *IMAGE_SHAPE), dtype=np.uint8)
  labels = rng.integers(0, 10, NUM_EXAMPLES, dtype=np.int32)
  return compiled.place_data(images, labels, mesh)  # Each device's shard: [D, N, ...].


def bench_row(model: str, batch_size: int, data: dict, mesh, opts) -> dict:
  """Compiles and times one (model, batch size); returns the row's numbers."""
  config = importlib.import_module(f"configs.{model}").get_config()
  family = build_family(config, IMAGE_SHAPE)
  init = lambda key: family.init_state(key, NUM_EXAMPLES, IMAGE_SHAPE)
  state = jax.jit(init, out_shardings=compiled.replicated(mesh))(jax.random.PRNGKey(SEED))
  k = opts.steps_per_dispatch

  start = time.perf_counter()  # AOT compile of the K-step scan, as training runs it.
  multi_step = compiled.MultiStep(family.train_step, batch_size, mesh).function(k)
  step_fn = multi_step.lower(state, data).compile()
  compile_s = time.perf_counter() - start

  abstract_batch = {name: jax.ShapeDtypeStruct((batch_size, *a.shape[2:]), a.dtype)
                    for name, a in data.items()}
  single = jax.jit(family.train_step).lower(state, abstract_batch, jax.random.PRNGKey(SEED))
  xla_flops = _xla_flops(single.compile())  # One step, outside any loop.

  state, metrics = step_fn(state, data)  # Warm-up dispatch.
  jax.block_until_ready((state, metrics))
  start = time.perf_counter()  # One timed dispatch sizes the windows.
  state, metrics = step_fn(state, data)
  jax.block_until_ready((state, metrics))
  dispatch_s = time.perf_counter() - start
  repeats = max(1, math.ceil(opts.min_window_s / dispatch_s))
  steps_per_s = []
  for _ in range(opts.windows):
    start = time.perf_counter()
    for _ in range(repeats):
      state, metrics = step_fn(state, data)
    jax.block_until_ready((state, metrics))
    steps_per_s.append(repeats * k / (time.perf_counter() - start))

  rate = statistics.median(steps_per_s)
  # The same matmul as the peak, right after the windows: well below the peak ⇒ a busy device.
  probe = matmul_flops_per_s(opts.peak_size, opts.matmul_repeats) * mesh.devices.size
  flops = analytic_matmul_flops(config, batch_size)
  return {
      "model": model, "batch_size": batch_size, "steps_per_dispatch": k,
      "dispatches_per_window": repeats, "windows": opts.windows,
      "compile_s": compile_s, "steps_per_s": rate, "samples_per_s": rate * batch_size,
      "ms_per_step": 1e3 / rate, "steps_per_s_windows": steps_per_s,
      "analytic_matmul_flops_per_step": flops, "xla_flops_per_step": xla_flops,
      "xla_flops_k_step_scan": _xla_flops(step_fn),  # Loop body counted once (see README).
      "achieved_flops_per_s": flops * rate, "matmul_probe_flops_per_s": probe,
      "xla_memory_bytes": _xla_memory_bytes(step_fn), "peak_device_bytes": _peak_device_bytes(),
  }


def markdown_table(result: dict) -> str:
  """The rows as a Markdown table, headed by the device and its measured peak."""
  peak = result["matmul_peak"]
  lines = [
      f"Device: {result['device_count']} × {result['device_kind']} ({result['backend']}), "
      f"jax {result['jax_version']}, {result['timestamp']}",
      f"Measured float32 matmul peak: {result['peak_flops_per_s'] / GIGA:,.1f} GFLOP/s "
      f"({peak['best_size']}² matmul, × {result['device_count']} device(s)); "
      f"1-min load average {result['load_average_1min']:.1f} on {result['host_cpu_count']} CPUs",
      "",
      "| model | batch | K | compile s | steps/s | samples/s | ms/step | GFLOP/step (matmul) "
      "| GFLOP/step (XLA) | GFLOP/s | % of peak | probe % | XLA mem MiB | peak mem MiB |",
      "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
  ]
  fmt = lambda value, scale, spec: "n/a" if value is None else format(value / scale, spec)
  for r in result["rows"]:
    lines.append(
        f"| {r['model']} | {r['batch_size']} | {r['steps_per_dispatch']} | {r['compile_s']:.1f} "
        f"| {r['steps_per_s']:,.1f} | {r['samples_per_s']:,.0f} | {r['ms_per_step']:.2f} "
        f"| {r['analytic_matmul_flops_per_step'] / GIGA:.3f} "
        f"| {fmt(r['xla_flops_per_step'], GIGA, '.3f')} "
        f"| {r['achieved_flops_per_s'] / GIGA:,.1f} | {r['percent_of_peak']:.1f} "
        f"| {r['probe_percent_of_peak']:.0f} "
        f"| {fmt(r['xla_memory_bytes'], MIB, ',.1f')} "
        f"| {fmt(r['peak_device_bytes'], MIB, ',.1f')} |")
  return "\n".join(lines) + "\n"


def _int_list(text: str) -> tuple[int, ...]:
  return tuple(int(x) for x in text.split(",") if x)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default=DEFAULT_OUT, help="JSON path; the table goes to .md")
  parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="configs/<name>.py list")
  parser.add_argument("--batch_sizes", type=_int_list, default=None)
  parser.add_argument("--steps_per_dispatch", type=int, default=None, help="K steps per scan")
  parser.add_argument("--windows", type=int, default=None, help="timing windows (median)")
  parser.add_argument("--quick", action="store_true", help="smoke run: batch 64, 1 window")
  args = parser.parse_args(argv)
  defaults = QUICK if args.quick else dict(
      batch_sizes=DEFAULT_BATCH_SIZES, windows=DEFAULT_WINDOWS,
      steps_per_dispatch=DEFAULT_STEPS_PER_DISPATCH, min_window_s=MIN_WINDOW_S,
      matmul_sizes=CPU_MATMUL_SIZES if jax.default_backend() == "cpu"
      else ACCELERATOR_MATMUL_SIZES, matmul_repeats=MATMUL_REPEATS)
  for name, value in defaults.items():
    if getattr(args, name, None) is None:
      setattr(args, name, value)
  args.models = tuple(m for m in args.models.split(",") if m)
  return args


def main(argv=None) -> dict:
  opts = parse_args(argv)
  mesh = compiled.make_mesh()
  num_devices = mesh.devices.size
  bad = [b for b in opts.batch_sizes if b % num_devices or b > NUM_EXAMPLES]
  if bad:
    sys.exit(f"batch sizes {bad}: each must be a multiple of the {num_devices} device(s) "
             f"and ≤ {NUM_EXAMPLES}")
  matmul_peak = measure_matmul_peak(opts.matmul_sizes, opts.matmul_repeats)
  opts.peak_flops_per_s = matmul_peak["per_device_flops_per_s"] * num_devices
  opts.peak_size = matmul_peak["best_size"]
  data = synthetic_data(mesh)
  rows = []
  for model in opts.models:
    for batch_size in opts.batch_sizes:
      rows.append(bench_row(model, batch_size, data, mesh, opts))
      print(f"{model} batch {batch_size}: {rows[-1]['samples_per_s']:,.0f} samples/s", flush=True)
  # The peak: the best rate that matmul reached in this run (up front or in a row's probe).
  peak = max([opts.peak_flops_per_s] + [r["matmul_probe_flops_per_s"] for r in rows])
  for r in rows:
    r["percent_of_peak"] = 100.0 * r["achieved_flops_per_s"] / peak
    r["probe_percent_of_peak"] = 100.0 * r["matmul_probe_flops_per_s"] / peak
  device = jax.devices()[0]
  result = {
      "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "jax_version": jax.__version__, "flax_version": flax.__version__,
      "optax_version": optax.__version__, "backend": jax.default_backend(),
      "device_kind": device.device_kind, "device_count": num_devices,
      "host_cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
      "xla_flags": os.environ.get("XLA_FLAGS", ""), "num_examples": NUM_EXAMPLES,
      "matmul_peak": matmul_peak, "peak_flops_per_s": peak, "rows": rows,
  }
  os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
  with open(opts.out, "w") as f:
    json.dump(result, f, indent=2)
  table = markdown_table(result)
  with open(os.path.splitext(opts.out)[0] + ".md", "w") as f:
    f.write(table)
  print(table)
  return result


if __name__ == "__main__":
  main()
