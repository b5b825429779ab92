"""The project's models trained in PyTorch, eager and under torch.compile: samples/s of the code
one would otherwise write, one JSON line per row. PyTorch is not a dependency of the project.

  python benchmarks/torch_reference.py --models gan_seed,vae --batch_sizes 64,256 \
      --modes eager,compile [--device cpu|cuda] [--windows 5] [--min_window_s 1]

Networks: benchmarks/torch_nets.py; steps: benchmarks/torch_steps.py; the same models, batch
sizes and synthetic data side by side with JAX: benchmarks/compare.py. Without torch this
prints one line and exits 2; a failed row is a line with "error" and exit status 1.
"""

import argparse
import importlib
import json
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

NO_TORCH_EXIT = 2  # Nothing measurable here: no torch, or no CUDA device for --device cuda.
MODELS = ("gan_seed", "gan", "vae", "dcgan", "dcgan32", "sngan", "wgan_gp", "lsgan",
          "conv_vae", "beta_vae")  # Every model with a PyTorch reference (not cgan, cvae, iwae).
DEFAULT_MODELS = ("gan_seed", "gan", "vae", "dcgan", "conv_vae")
DEFAULT_BATCH_SIZES = (64, 256)
MODES = ("eager", "compile")
NUM_EXAMPLES = 8192  # As benchmarks/rows.py (more when n_critic × batch needs more).
NATIVE_SIZE = 28  # image_size = 0 ⇒ 28×28×C, as benchmarks/rows.py.


def require_torch(script: str = "torch_reference.py", cold_compile: bool = False):
  """torch, or one line saying it is missing and exit status 2. cold_compile: Inductor's
  on-disk caches off (read when torch is imported), so compile times are first-run times."""
  if cold_compile:
    os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
  try:
    import torch
  except ImportError as e:
    print(f"{script}: PyTorch is not installed ({e}); install it (pip install torch, or "
          f"pip install -e '.[torch]') to measure the PyTorch rows", file=sys.stderr)
    sys.exit(NO_TORCH_EXIT)
  return torch


def load_config(model: str):
  """configs/<model>.py's config (float32), as benchmarks/rows.py loads it, without JAX."""
  config = importlib.import_module(f"configs.{model}").get_config()
  config.model = model
  config.compute_dtype = "float32"
  return config


def image_shape_of(config, channels: int = 1) -> tuple[int, int, int]:
  """(S, S, C) for config.image_size = S > 0, else 28×28×C (benchmarks/rows.py's rule)."""
  size = config.image_size or NATIVE_SIZE
  return (size, size, channels)


def num_examples(config, batch_sizes) -> int:
  """The synthetic set's size: NUM_EXAMPLES, or n_critic × the largest batch if more."""
  return max(NUM_EXAMPLES, config.get("n_critic", 1) * max(batch_sizes))


def batches_per_step(config) -> int:
  """Real batches one step consumes (a GAN's n_critic)."""
  return config.n_critic if config.family == "gan" else 1


def torch_device(torch, name: str, script: str = "torch_reference.py"):
  """torch.device for --device; one line and exit status 2 when CUDA is asked and absent."""
  if name == "cuda" and not torch.cuda.is_available():
    print(f"{script} --device cuda: torch {torch.__version__} sees no CUDA device",
          file=sys.stderr)
    sys.exit(NO_TORCH_EXIT)
  return torch.device(name)


def setup_torch(torch, device, matmul_precision: str, threads: int = 0) -> dict:
  """Seeds and backend settings of the torch rows (stated in every row)."""
  torch.manual_seed(0)
  if threads:
    torch.set_num_threads(threads)
  if device.type == "cuda":
    torch.backends.cudnn.benchmark = True  # Pick the fastest conv algorithms per shape.
    torch.set_float32_matmul_precision(matmul_precision)  # "high": TF32, as XLA's default.
  return {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
          "float32_matmul_precision": torch.get_float32_matmul_precision(),
          "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
          "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
          "inductor_caches": os.environ.get("TORCHINDUCTOR_FORCE_DISABLE_CACHES") != "1"}


def torch_counts(config, image_shape, device) -> dict:
  """{"params": {role: n}, "macs": {role: forward MACs per example}} of the torch networks."""
  from benchmarks import torch_nets
  nets = {role: net.to(device) for role, net in torch_nets.networks(config, image_shape).items()}
  inputs = torch_nets.network_inputs(config, image_shape, device)
  return {"params": {r: torch_nets.parameter_count(n) for r, n in nets.items()},
          "macs": {r: torch_nets.forward_macs(n, inputs[r]) for r, n in nets.items()}}


def measure(config, image_shape, batch_size, data, mode, opts, deadline=0.0) -> dict:
  """Builds, warms up and times one torch row; its numbers."""
  from benchmarks import torch_steps
  trainer = torch_steps.build_trainer(config, image_shape, batch_size, data,
                                      mode == "compile", opts.compile_mode)
  timer = torch_steps.Timer(trainer)
  warm = timer.warm_up(opts.min_window_s)
  rates = [timer.window() for _ in range(opts.windows)
           if not deadline or time.time() < deadline] or [timer.window()]
  rate = statistics.median(rates)
  bps = batches_per_step(config)
  return {"steps_per_s": rate, "samples_per_s": rate * batch_size * bps,
          "steps_per_s_windows": rates, "steps_per_window": timer.steps_per_window,
          "batches_per_step": bps, **warm}


def parse_args(argv=None, parser=None):
  """The flags of this script (and of compare.py, which passes its parser with its own)."""
  parser = parser or argparse.ArgumentParser(description=__doc__.split("\n")[0])
  add = parser.add_argument
  split = lambda text: tuple(x for x in text.split(",") if x)
  add("--models", type=split, default=DEFAULT_MODELS, help=f"of {', '.join(MODELS)}")
  add("--batch_sizes", type=lambda t: tuple(int(x) for x in split(t)),
      default=DEFAULT_BATCH_SIZES)
  add("--modes", type=split, default=MODES, help="eager and/or compile (torch.compile)")
  add("--compile_mode", default="default",
      help="torch.compile mode: default, reduce-overhead (CUDA graphs), max-autotune")
  add("--device", default="cpu", choices=("cpu", "cuda"))
  add("--windows", type=int, default=5, help="timing windows per row (median)")
  add("--min_window_s", type=float, default=1.0, help="shortest timing window")
  add("--matmul_precision", default="high",
      help="CUDA float32 matmuls: high (TF32, XLA's default) or highest (true float32)")
  add("--cold_compile", action="store_true",
      help="Inductor's on-disk caches off: compile times as on a first run")
  add("--torch_threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
  add("--time_budget_s", type=float, default=0.0, help="start no row after this (0: none)")
  if not any(a.dest == "out" for a in parser._actions):
    add("--out", default="", help="also append the JSON lines to this file")
  opts = parser.parse_args(argv)
  bad = [m for m in opts.modes if m not in MODES] + [m for m in opts.models if m not in MODELS]
  if bad:
    parser.error(f"unknown --modes / --models value(s) {bad} (models: {', '.join(MODELS)})")
  return opts


def main(argv=None) -> int:
  opts = parse_args(argv)
  torch = require_torch(cold_compile=opts.cold_compile)
  from benchmarks import torch_steps
  device = torch_device(torch, opts.device)
  settings = setup_torch(torch, device, opts.matmul_precision, opts.torch_threads)
  deadline = time.time() + opts.time_budget_s if opts.time_budget_s else 0.0
  failed = False
  for model in opts.models:
    config = load_config(model)
    shape = image_shape_of(config)
    data = torch_steps.synthetic_images(num_examples(config, opts.batch_sizes), shape, device)
    counts = torch_counts(config, shape, device)
    for batch_size in opts.batch_sizes:
      for mode in opts.modes:
        row = {"model": model, "batch_size": batch_size, "mode": mode,
               "compile_mode": opts.compile_mode if mode == "compile" else None,
               "device": device.type, "device_name": torch_steps.device_name(device),
               "param_count": sum(counts["params"].values()), "params": counts["params"],
               "forward_macs_per_example": counts["macs"], "image_shape": list(shape),
               **settings}
        if deadline and time.time() >= deadline:
          row["skipped"] = "time budget"
        else:
          try:
            row.update(measure(config, shape, batch_size, data, mode, opts, deadline))
          except Exception as e:  # noqa: BLE001 - one failed row must not stop the others.
            row["error"], failed = f"{type(e).__name__}: {e}"[:500], True
        line = json.dumps(row)
        print(line, flush=True)
        if opts.out:
          with open(opts.out, "a") as f:
            f.write(line + "\n")
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
