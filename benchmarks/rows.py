"""One benchmark process (started by train_step.py): the device and its matmul peaks, or the rows
of one (device count, model, dtype) group (every parallel mode), each printed as one JSON line.

  python -m benchmarks.rows '{"mode": "info", ...}' | '{"mode": "rows", ...}'

Rows of a group run in increasing batch order in this one process, so the allocator's running
peak (`peak_bytes_in_use`) read after a row is that row's peak whenever it rose during the row.
"""

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

from benchmarks import ROW_MARK, flops  # noqa: E402
from genimg_jax import sharding  # noqa: E402
from genimg_jax.data import placement  # noqa: E402
from genimg_jax.train import compiled, runs, sweep  # noqa: E402
from genimg_jax.train.families import build_family  # noqa: E402

SEED = 0  # Seeds the synthetic data and the model state.
NUM_CLASSES = 10  # Synthetic labels 0..9 (like MNIST / CIFAR-10), for conditional models.
NATIVE_SIZE = 28  # image_size = 0 ⇒ 28×28×C, the MNIST shape.
FLOPS_PER_MAC = 2
ASSUMED_EFFICIENCY = 0.25  # Step-time guess (before compiling) = FLOPs / (this × peak).


class Unavailable(Exception):
  """This machine cannot run the row (too few devices, too slow): skipped, not failed."""


def emit(record: dict) -> None:
  print(ROW_MARK + json.dumps(record), flush=True)


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def matmul_flops_per_s(n: int, repeats: int, dtype: str) -> float:
  """Median FLOP/s of a jitted [n, n] @ [n, n] in `dtype` on the default device."""
  matmul = jax.jit(jnp.matmul)
  a, b = jax.random.normal(jax.random.PRNGKey(SEED), (2, n, n), jnp.float32).astype(dtype)
  jax.block_until_ready(matmul(a, b))  # Compile and warm up.
  return FLOPS_PER_MAC * n**3 / _median_seconds(lambda: matmul(a, b), repeats)


def device_info(spec: dict) -> dict:
  """Backend, device kind and count, versions, and the matmul peak of one device per dtype
  (bfloat16 too on an accelerator, where it is the tensor-core peak)."""
  backend = jax.default_backend()
  sizes = spec["matmul_sizes"] or spec["cpu_sizes" if backend == "cpu" else "accelerator_sizes"]
  dtypes = list(spec["dtypes"])
  if backend != "cpu" and "bfloat16" not in dtypes:
    dtypes.append("bfloat16")
  peaks = {}
  for dtype in dtypes:
    rows = [{"size": n, "flops_per_s": matmul_flops_per_s(n, spec["matmul_repeats"], dtype)}
            for n in sizes]
    best = max(rows, key=lambda r: r["flops_per_s"])
    peaks[dtype] = {"per_device_flops_per_s": best["flops_per_s"], "best_size": best["size"],
                    "sizes": rows, "repeats": spec["matmul_repeats"]}
  device = jax.devices()[0]
  return {"backend": backend, "device_kind": device.device_kind,
          "device_count": jax.device_count(), "jax_version": jax.__version__,
          "flax_version": flax.__version__, "optax_version": optax.__version__,
          "python_version": sys.version.split()[0], "matmul_peaks": peaks}


def load_config(model: str, dtype: str, parallel: str):
  """configs/<model>.py's config with the row's compute dtype and parallel mode."""
  config = importlib.import_module(f"configs.{model}").get_config()
  config.model = model
  config.compute_dtype = dtype
  config.parallel = parallel
  return config


def image_shape_of(config, channels: int) -> tuple[int, int, int]:
  """(S, S, C) for config.image_size = S > 0, else the native 28×28×C."""
  size = config.image_size or NATIVE_SIZE
  return (size, size, channels)


def make_multi_step(family, config, batch_size: int, mesh, num_examples: int,
                    num_runs: int = 1):
  """The engine's K-step function for this row, built as train/loop.py builds it (one shard,
  the data on the devices, `config.parallel` as the row asks, `num_runs` runs vmapped)."""
  config = config.copy_and_resolve_references()
  config.batch_size = batch_size
  config.num_runs = num_runs
  return compiled.build(family, config, mesh, compiled.layout_for(family, config, mesh,
                                                                  num_examples))


def synthetic_data(mesh, num_examples: int, image_shape) -> dict:
  """{"image": uint8 [N, H, W, C], "label": int32 [N]} of random values, placed as the
  engine places a resident split (each device its shard)."""
  rng = np.random.default_rng(SEED)
  images = rng.integers(0, 256, (num_examples, *image_shape), dtype=np.uint8)
  labels = rng.integers(0, NUM_CLASSES, num_examples, dtype=np.int32)
  return placement.place_resident(images, labels, mesh)


def _cost_flops(stage):
  """'flops' of a Lowered or Compiled stage's cost analysis (dict, or a one-dict list), or None."""
  try:
    analysis = stage.cost_analysis()
  except Exception:  # noqa: BLE001 - not every backend / version offers it.
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  value = (analysis or {}).get("flops")
  return float(value) if value is not None else None


def _xla_memory_bytes(compiled_fn):
  """Arguments + outputs − donated aliases + temporaries of one call, per XLA; or None."""
  try:
    stats = compiled_fn.memory_analysis()
  except Exception:  # noqa: BLE001
    return None
  if stats is None:
    return None
  return (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
          + stats.temp_size_in_bytes)


def _peak_bytes(device):
  """The allocator's running peak of bytes in use on `device`, or None (e.g. CPU)."""
  try:
    stats = device.memory_stats()
  except Exception:  # noqa: BLE001
    return None
  return stats.get("peak_bytes_in_use") if stats else None


class Group:
  """Everything one (devices, model, dtype) group shares across batch sizes and parallel modes."""

  def __init__(self, spec: dict):
    self.spec = spec
    self.devices = jax.devices()[: spec["devices"]]
    if len(self.devices) < spec["devices"]:
      raise Unavailable(f"{spec['devices']} devices asked, {len(self.devices)} present")
    self.mesh = sharding.make_mesh(self.devices)
    self.configs, self.families = {}, {}  # parallel mode → config, family.
    for parallel in sorted(set(spec["parallels"]) | {"jit"}):
      config = load_config(spec["model"], spec["dtype"], parallel)
      self.image_shape = image_shape_of(config, spec["channels"])
      self.configs[parallel] = config
      self.families[parallel] = build_family(config, self.image_shape, NUM_CLASSES)
    self.config, self.family = self.configs["jit"], self.families["jit"]
    self.bps = self.family.batches_per_step
    networks = flops.family_networks(self.family, self.image_shape)
    self.macs = {count: flops.step_macs(self.config, networks[count]) for count in networks}
    self.macs_one_critic = flops.step_macs(self.config, networks["valid"], n_critic=1)
    num_examples = max(spec["num_examples"], self.bps * max(spec["batch_sizes"]))
    self.num_examples = num_examples
    self.data = synthetic_data(self.mesh, num_examples, self.image_shape)
    self.peak = spec["peaks"][spec["dtype"]]
    init = lambda key: self.family.init_state(key, self.num_examples, self.image_shape)
    self._init = {1: jax.jit(lambda: init(jax.random.PRNGKey(SEED)),
                             out_shardings=sharding.replicated(self.mesh))}  # R → compiled init.
    for num_runs in spec["runs"]:
      if num_runs > 1:
        config = self.config.copy_and_resolve_references()
        config.num_runs = num_runs
        plan = sweep.plan(config)
        self._init[num_runs] = jax.jit(lambda plan=plan: runs.init_state(init, plan),
                                       out_shardings=sharding.replicated(self.mesh))
    self._xla = {}  # batch size → XLA's FLOPs of one step (the same for every parallel mode).

  def init_state(self, num_runs: int = 1):
    """A fresh state: the family's, or a runs.RunsState of `num_runs` seeds."""
    return self._init[num_runs]()

  def xla_flops(self, batch_size: int, state):
    """XLA's count of one step: the jit path's 1-step scan, lowered (not compiled); once per
    batch size."""
    if batch_size not in self._xla:
      multi = make_multi_step(self.family, self.config, batch_size, self.mesh,
                              self.num_examples)
      self._xla[batch_size] = _cost_flops(multi.function(1).lower(state, self.data))
    return self._xla[batch_size]

  def dispatch_plan(self, batch_size: int) -> tuple[int, float]:
    """(K, guessed seconds per step): the asked K, lowered so that one dispatch takes about min_window_s (by a guess from
    the analytic FLOPs and the measured peak), at least 1."""
    flops_step = FLOPS_PER_MAC * self.macs["nominal"] * batch_size
    peak = self.peak["per_device_flops_per_s"] * (1 if self.spec["backend"] == "cpu"
                                                  else len(self.devices))
    guess_s = flops_step / (ASSUMED_EFFICIENCY * peak)
    target = max(self.spec["min_window_s"], 0.05)
    return max(1, min(self.spec["steps_per_dispatch"], int(target / guess_s) or 1)), guess_s

  def row(self, batch_size: int, parallel: str, num_runs: int = 1) -> dict:
    """Compiles and times one batch size in one parallel mode with `num_runs` runs in the
    program; returns the row's numbers (samples/s: every run's together)."""
    spec = self.spec
    k, guess_s = self.dispatch_plan(batch_size)  # The same K for every R: a fair ratio.
    if spec["max_est_step_s"] and guess_s > spec["max_est_step_s"]:
      raise Unavailable(f"estimated {guess_s:.0f} s per step on this device (over "
                        f"--max_est_step_s {spec['max_est_step_s']:g}): use smaller batches")
    peak_before = _peak_bytes(self.devices[0])
    xla_flops = (self.xla_flops(batch_size, self.init_state())
                 if spec["xla_check"] and num_runs == 1 else None)
    state = self.init_state(num_runs)
    start = time.perf_counter()  # AOT lower + compile of the K-step scan, as training runs it.
    multi = make_multi_step(self.families[parallel], self.configs[parallel], batch_size,
                            self.mesh, self.num_examples, num_runs)
    step_fn = multi.function(k).lower(state, self.data).compile()
    compile_s = time.perf_counter() - start

    state, metrics = step_fn(state, self.data)  # Warm-up dispatch.
    jax.block_until_ready((state, metrics))
    start = time.perf_counter()  # One timed dispatch sizes the windows.
    state, metrics = step_fn(state, self.data)
    jax.block_until_ready((state, metrics))
    dispatch_s = time.perf_counter() - start
    repeats = max(1, math.ceil(spec["min_window_s"] / dispatch_s))
    steps_per_s = [k / dispatch_s] if repeats == 1 else []  # A long dispatch is a window.
    windows = max(1, min(spec["windows"], int(spec["max_timing_s"] / (repeats * dispatch_s))))
    while len(steps_per_s) < windows:
      start = time.perf_counter()
      for _ in range(repeats):
        state, metrics = step_fn(state, self.data)
      jax.block_until_ready((state, metrics))
      steps_per_s.append(repeats * k / (time.perf_counter() - start))
    rate = statistics.median(steps_per_s)
    peak_after = _peak_bytes(self.devices[0])
    # The peak's matmul right after the windows: well below the peak ⇒ a busy device.
    probe = matmul_flops_per_s(self.peak["best_size"], spec["matmul_repeats"], spec["dtype"])
    flops_step = FLOPS_PER_MAC * self.macs["nominal"] * batch_size * num_runs
    return {
        "steps_per_dispatch": k, "dispatches_per_window": repeats, "windows": len(steps_per_s),
        "compile_s": compile_s, "steps_per_s": rate,
        "samples_per_s": rate * batch_size * self.bps * num_runs,
        "per_run_samples_per_s": rate * batch_size * self.bps, "ms_per_step": 1e3 / rate,
        "steps_per_s_windows": steps_per_s, "batches_per_step": self.bps,
        "analytic_matmul_flops_per_step": flops_step,
        "analytic_valid_flops_per_step": (FLOPS_PER_MAC * self.macs["valid"] * batch_size
                                          * num_runs),
        "analytic_valid_flops_one_critic": (FLOPS_PER_MAC * self.macs_one_critic * batch_size
                                            * num_runs),
        "xla_flops_per_step": xla_flops, "achieved_flops_per_s": flops_step * rate,
        "matmul_probe_flops_per_s": probe, "xla_memory_bytes": _xla_memory_bytes(step_fn),
        "peak_device_bytes": peak_after,
        "peak_device_bytes_exact": (peak_after is not None and
                                    (peak_before is None or peak_after > peak_before)),
        "image_shape": list(self.image_shape), "num_examples": self.num_examples,
    }


def run_group(spec: dict) -> None:
  """Emits one record per (batch size, parallel mode), batches ascending: numbers, or
  'skipped' / 'error' with the reason."""
  keys = {name: spec[name] for name in ("model", "devices", "dtype")}
  cells = [(b, p, r) for b in sorted(spec["batch_sizes"]) for p in spec["parallels"]
           for r in spec["runs"]]
  try:
    group = Group(spec)
  except Exception as e:  # noqa: BLE001 - one broken model must not stop the table.
    why = {"skipped": str(e)} if isinstance(e, Unavailable) else {
        "error": f"{type(e).__name__}: {e}"[:500]}
    for batch_size, parallel, num_runs in cells:
      emit({**keys, "parallel": parallel, "batch_size": batch_size, "runs": num_runs, **why})
    return
  last_s = None
  for batch_size, parallel, num_runs in cells:
    base = {**keys, "parallel": parallel, "batch_size": batch_size, "runs": num_runs}
    if batch_size % len(group.devices):
      emit({**base, "skipped": f"batch not divisible by {len(group.devices)} devices"})
      continue
    start = time.time()
    if spec["deadline"] and start + 1.5 * (last_s or 0.0) > spec["deadline"]:
      emit({**base, "skipped": "time budget"})
      continue
    try:
      emit({**base, **group.row(batch_size, parallel, num_runs)})
    except Unavailable as e:
      emit({**base, "skipped": str(e)})
    except Exception as e:  # noqa: BLE001
      emit({**base, "error": f"{type(e).__name__}: {e}"[:500]})
    last_s = time.time() - start


def main(argv=None) -> None:
  spec = json.loads((argv or sys.argv[1:])[0])
  if spec["mode"] == "info":
    emit(device_info(spec))
  else:
    run_group(spec)


if __name__ == "__main__":
  main()
