"""benchmarks/train_step.py and accelerator.sh: quick runs write the JSON and Markdown they
promise over the device and parallel axes; the table's derived columns; the benchmark imports
only what the bare GPU image has (plus the wheel list), and accelerator.sh installs that."""

import glob
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from benchmarks import train_step

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "benchmarks", "train_step.py")
ACCELERATOR = os.path.join(REPO_ROOT, "benchmarks", "accelerator.sh")
WHEELS = os.path.join(REPO_ROOT, ".whl")
RUN_TIMEOUT_S = 600  # A quick run takes 1–2 min on 2 loaded cores (one process per group).
ROW_POSITIVE = ("compile_s", "steps_per_s", "samples_per_s", "ms_per_step",
                "analytic_matmul_flops_per_step", "xla_flops_per_step",
                "achieved_flops_per_s", "percent_of_peak", "scaling_efficiency")
NO_PMAP = ("has no pmap path", "takes no axis_name")  # Skip reasons: no pmap dispatch.
CONV_MODELS = ("wgan_gp",)  # One conv GAN with n_critic 5 and the penalty (CI time); the
# benchmark README lists XLA ÷ analytic for every conv model.
# Top-level modules of the project's dependencies that the bare GPU image lacks (its package
# list is in the device notes); only ml_collections may be needed on the benchmark's path.
MISSING_ON_GPU = ("ml_collections", "tensorboardX", "tensorflow_datasets", "array_record",
                  "tree", "grain", "tensorflow", "immutabledict", "promise", "simple_parsing",
                  "tensorflow_metadata", "termcolor", "toml", "importlib_resources")
BLOCKER = '''
import importlib.abc, importlib.machinery, os, sys
_BLOCKED = set(filter(None, os.environ.get("BENCH_BLOCK", "").split(",")))
_SITE = os.environ.get("BENCH_SITE", "")

class _Blocker(importlib.abc.MetaPathFinder):
  """Hides the blocked modules unless they come from _SITE: a machine without them."""

  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] not in _BLOCKED:
      return None
    if _SITE and path is None and importlib.machinery.PathFinder.find_spec(name, [_SITE]):
      return None
    if _SITE and path is not None and all(str(p).startswith(_SITE) for p in path):
      return None
    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, _Blocker())
'''


def _blocked_env(tmp_path, blocked, site=""):
  """Environment whose Pythons cannot import `blocked` (except from `site`): sitecustomize."""
  hook = tmp_path / "blocker"
  hook.mkdir(exist_ok=True)
  (hook / "sitecustomize.py").write_text(BLOCKER)
  return dict(os.environ, PYTHONPATH=str(hook), BENCH_BLOCK=",".join(blocked),
              BENCH_SITE=site, JAX_PLATFORMS="cpu")


def _run(args, tmp_path, env=None):
  out = tmp_path / "bench.json"
  proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--out", str(out), *args],
                        cwd=REPO_ROOT, env=env or dict(os.environ, JAX_PLATFORMS="cpu"),
                        capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return json.loads(out.read_text()), (tmp_path / "bench.md").read_text(), proc.stdout


def _check_measured(row):
  for key in ROW_POSITIVE:
    assert row[key] > 0, (row["model"], key)
  assert row["peak_device_bytes"] is None or row["peak_device_bytes"] > 0
  # XLA's count adds elementwise work and Adam to the valid-tap matmul count.
  assert 1.0 <= row["xla_ratio"] < 1.6, (row["model"], row["xla_ratio"])
  assert row["analytic_matmul_flops_per_step"] >= row["analytic_valid_flops_per_step"]


@pytest.mark.slow
def test_quick_run_over_devices_and_parallel_modes(tmp_path):
  result, table, stdout = _run(["--models", "gan_seed,vae", "--devices", "1,2",
                                "--parallel", "jit,pmap"], tmp_path)
  assert result["device"]["backend"] == "cpu" and result["device"]["matmul_peaks"]["float32"]
  for key in ("timestamp", "jax_version", "device_kind"):
    assert result.get(key) or result["device"].get(key), key
  rows = {(r["model"], r["devices"], r["parallel"]): r for r in result["rows"]}
  assert len(rows) == len(result["rows"]) == 8
  for model in ("gan_seed", "vae"):
    for devices in (1, 2):
      jit = rows[(model, devices, "jit")]
      _check_measured(jit)
      pmap = rows[(model, devices, "pmap")]
      assert "error" not in pmap, pmap
      if "skipped" in pmap:
        assert any(reason in pmap["skipped"] for reason in NO_PMAP), pmap
      else:
        _check_measured(pmap)
    assert rows[(model, 1, "jit")]["scaling_efficiency"] == 1.0
    two = rows[(model, 2, "jit")]
    assert two["scaling_efficiency"] == pytest.approx(
        two["samples_per_s"] / (2 * rows[(model, 1, "jit")]["samples_per_s"]))
    assert f"| {model} | 2 | jit | float32 | 8 |" in table
  assert "gan_seed ×2 jit float32 batch 8" in stdout


@pytest.mark.slow
def test_quick_run_of_the_conv_models_checks_their_flops_against_xla(tmp_path):
  models = [m for m in CONV_MODELS if os.path.exists(os.path.join(REPO_ROOT, "configs",
                                                                  f"{m}.py"))]
  if not models:
    pytest.skip(f"none of {', '.join(CONV_MODELS)} exists yet")
  result, table, _ = _run(["--models", ",".join(models)], tmp_path)
  for row in result["rows"]:
    _check_measured(row)
    assert f"| {row['model']} | 1 | jit | float32 | 8 |" in table


def _row(model, devices, samples_per_s, xla=None, full=100.0, once=100.0):
  return {"model": model, "devices": devices, "parallel": "jit", "dtype": "float32",
          "batch_size": 8, "steps_per_s": samples_per_s / 8, "samples_per_s": samples_per_s,
          "achieved_flops_per_s": 5.0, "matmul_probe_flops_per_s": 10.0,
          "xla_flops_per_step": xla, "analytic_valid_flops_per_step": full,
          "analytic_valid_flops_one_critic": once}


def test_finish_rows_scaling_peak_and_xla_ratio():
  info = {"backend": "gpu", "matmul_peaks": {"float32": {"per_device_flops_per_s": 20.0}}}
  rows = [_row("a", 1, 100.0, xla=110.0), _row("a", 4, 300.0),
          _row("w", 1, 50.0, xla=24.0, full=100.0, once=20.0), {"model": "x", "skipped": "."}]
  train_step.finish_rows(rows, info)
  assert rows[0]["scaling_efficiency"] == 1.0 and rows[1]["scaling_efficiency"] == 0.75
  assert rows[1]["xla_ratio"] == pytest.approx(1.1)  # Filled from the 1-device row.
  assert rows[0]["percent_of_peak"] == 25.0 and rows[1]["percent_of_peak"] == 6.25  # 4 GPUs.
  assert rows[2]["xla_counts_critic_loop_once"] and rows[2]["xla_ratio"] == pytest.approx(1.2)
  info["backend"] = "cpu"  # Fake CPU devices share the host: the peak is not multiplied.
  train_step.finish_rows(rows, info)
  assert rows[1]["percent_of_peak"] == 25.0


def test_device_counts():
  assert train_step.device_counts("all", "gpu", 8) == [1, 2, 4, 8]
  assert train_step.device_counts("all", "gpu", 6) == [1, 2, 4, 6]
  assert train_step.device_counts("1,2,4,8", "cpu", 1) == [1, 2, 4, 8]  # Forced per child.
  with pytest.raises(SystemExit):
    train_step.device_counts("1,2", "gpu", 1)


def test_benchmark_imports_only_what_the_gpu_image_has(tmp_path):
  """Every model builds without the packages the GPU image lacks, except ml_collections
  (installed there from the wheel list): a new top-level import on this path fails here."""
  blocked = [m for m in MISSING_ON_GPU if m != "ml_collections"]
  code = ("import importlib, sys; from benchmarks import train_step, rows; "
          "from genimg_jax.train.families import build_family\n"
          "for m in train_step.discover_models():\n"
          "  c = rows.load_config(m, 'float32', 'jit')\n"
          "  build_family(c, rows.image_shape_of(c, 1), rows.NUM_CLASSES)\n"
          "print('built', train_step.discover_models())")
  proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                        text=True, env=_blocked_env(tmp_path, blocked), timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "'gan'" in proc.stdout and "'vae'" in proc.stdout
  check = subprocess.run([sys.executable, "-c", "import tensorflow_datasets"], cwd=REPO_ROOT,
                         capture_output=True, text=True, env=_blocked_env(tmp_path, blocked))
  assert check.returncode != 0  # The blocker works.


def _installable_wheels(dest):
  """The wheels of .whl/ this Python can install (all on 3.12; the pure ones elsewhere)."""
  wheels = [w for w in glob.glob(os.path.join(WHEELS, "*.whl"))
            if sys.version_info[:2] == (3, 12) or w.endswith("-none-any.whl")]
  dest.mkdir()
  for w in wheels:
    shutil.copy(w, dest)
  return wheels


@pytest.mark.slow
def test_accelerator_sh_installs_the_missing_packages_from_wheels(tmp_path):
  if not glob.glob(os.path.join(WHEELS, "ml_collections-*.whl")):
    pytest.skip(".whl/ has no ml_collections wheel: make it with benchmarks/wheels.sh")
  site = str(tmp_path / "site")
  env = _blocked_env(tmp_path, MISSING_ON_GPU, site)
  out = tmp_path / "out"
  empty = tmp_path / "no_wheels"
  empty.mkdir()
  cmd = ["bash", ACCELERATOR, "--quick", str(out), "--models", "vae"]
  # Without the wheels: one line naming the missing package, non-zero exit, no rows run.
  proc = subprocess.run(cmd, env={**env, "WHEELS": str(empty), "SITE": site},
                        capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
  assert proc.returncode != 0 and "'ml_collections' is missing" in proc.stderr, proc.stderr
  assert not (out / "train_step_gpu.json").exists()
  # With them: installed into SITE, then the table.
  _installable_wheels(tmp_path / "wheels")
  proc = subprocess.run(cmd, env={**env, "WHEELS": str(tmp_path / "wheels"), "SITE": site},
                        capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert os.path.isdir(os.path.join(site, "ml_collections"))
  result = json.loads((out / "train_step_gpu.json").read_text())
  measured = [r for r in result["rows"] if "steps_per_s" in r]
  assert [(r["model"], r["parallel"], r["dtype"]) for r in measured][:1] == [
      ("vae", "jit", "bfloat16")]
  assert "| vae | 1 | jit | bfloat16 | 64 |" in (out / "train_step_gpu.md").read_text()


@pytest.mark.slow
def test_feature_space_benchmark_times_both_conv_forms(tmp_path, monkeypatch):
  """benchmarks/feature_spaces.py: rows for the classifier and both Inception conv forms (a
  tiny stand-in network, so no weights are needed), the ratio column, and `conv` restored."""
  from benchmarks import feature_spaces
  from genimg_jax.evaluation import inception, inception_net

  traced = []  # Which conv form each compilation traced: each form must get its own trace.

  def recording(form, conv):
    return lambda *a: traced.append(form) or conv(*a)

  monkeypatch.setattr(inception_net, "conv", recording("fast", inception_net.conv))
  monkeypatch.setattr(feature_spaces, "_plain_conv", recording("plain", feature_spaces._plain_conv))
  shipped = inception_net.conv

  class Tiny(inception_net.nn.Module):  # Two ConvBN layers: the unpadded 3×3 and the 1×1 form.
    @inception_net.nn.compact
    def __call__(self, x):
      x = inception_net.ConvBN(4, (3, 3), 2, name="conv")(x[:, :33, :33])
      return inception_net.ConvBN(4, (1, 1), name="conv_1")(x).mean(axis=(1, 2))

  images = np.zeros((2, 299, 299, 3), np.float32)
  params = Tiny().init(jax.random.key(0), images)["params"]
  traced.clear()  # Init traced the fast form once; count the benchmark's traces only.
  monkeypatch.setattr(inception_net, "InceptionV3", Tiny)
  monkeypatch.setattr(inception, "load_params", lambda path: params)
  rows = (feature_spaces.classifier_rows(8, windows=1)
          + feature_spaces.inception_rows("unused", [2], 1, ["fast", "plain"]))
  assert [(r["space"], r["form"], r["batch"]) for r in rows] == [
      ("classifier", "-", 8), ("inception", "fast", 2), ("inception", "plain", 2)]
  assert all(r["images_per_s"] > 0 and r["gflop_per_s"] > 0 for r in rows)
  assert inception_net.conv is shipped
  assert traced == ["fast", "fast", "plain", "plain"], traced
  table = feature_spaces.markdown(rows)
  assert table.count("\n") == 4 and table.rstrip().endswith("× |")


@pytest.mark.slow
def test_quick_run_times_several_runs_in_one_program(tmp_path):
  result, table, _ = _run(["--models", "vae", "--runs", "3"], tmp_path)
  rows = {r["runs"]: r for r in result["rows"]}
  assert sorted(rows) == [1, 3]  # R = 1 is always timed: the speed-up's denominator.
  one, three = rows[1], rows[3]
  assert one["runs_speedup"] == 1.0
  assert three["per_run_samples_per_s"] == pytest.approx(three["samples_per_s"] / 3)
  assert three["runs_speedup"] == pytest.approx(three["samples_per_s"] / one["samples_per_s"])
  assert three["analytic_matmul_flops_per_step"] == pytest.approx(
      3 * one["analytic_matmul_flops_per_step"])
  assert "| vae | 1 | jit | float32 | 8 | 3 |" in table


def test_finish_rows_runs_speedup():
  info = {"backend": "cpu", "matmul_peaks": {"float32": {"per_device_flops_per_s": 20.0}}}
  rows = [dict(_row("a", 1, 100.0, xla=110.0), runs=1), dict(_row("a", 1, 250.0), runs=4)]
  train_step.finish_rows(rows, info)
  assert rows[1]["runs_speedup"] == 2.5 and rows[1]["xla_ratio"] is None
