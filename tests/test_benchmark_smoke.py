"""Smoke test of benchmarks/train_step.py: --quick writes the JSON and Markdown it promises."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "benchmarks", "train_step.py")
QUICK_TIMEOUT_S = 120  # --quick takes ~10 s on 2 idle cores; slack for a loaded machine.
ROW_POSITIVE = ("compile_s", "steps_per_s", "samples_per_s", "ms_per_step",
                "analytic_matmul_flops_per_step", "xla_flops_per_step",
                "achieved_flops_per_s", "percent_of_peak")
SEED_GAN_FLOPS_PER_EXAMPLE = 31_942_656  # Hand count for configs/gan_seed.py (see the script).
VAE_FLOPS_PER_EXAMPLE = 1_077_248  # Hand count for configs/vae.py.


def _load_benchmark():
  spec = importlib.util.spec_from_file_location("train_step_benchmark", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_analytic_flops_match_hand_counts():
  from configs import gan_seed, vae
  bench = _load_benchmark()
  assert bench.analytic_matmul_flops(gan_seed.get_config(), 64) == 64 * SEED_GAN_FLOPS_PER_EXAMPLE
  assert bench.analytic_matmul_flops(vae.get_config(), 3) == 3 * VAE_FLOPS_PER_EXAMPLE


@pytest.mark.slow
def test_quick_run_writes_json_and_table(tmp_path):
  out = tmp_path / "bench.json"
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run(
      [sys.executable, SCRIPT, "--quick", "--models", "gan_seed,vae", "--out", str(out)],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=QUICK_TIMEOUT_S)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(out.read_text())
  for key in ("timestamp", "jax_version", "backend", "device_kind", "device_count"):
    assert result[key], key
  assert result["peak_flops_per_s"] > 0
  assert result["matmul_peak"]["sizes"]
  rows = result["rows"]
  assert [(r["model"], r["batch_size"]) for r in rows] == [("gan_seed", 64), ("vae", 64)]
  for row in rows:
    for key in ROW_POSITIVE:
      assert row[key] > 0, (row["model"], key)
    assert row["peak_device_bytes"] is None or row["peak_device_bytes"] > 0
    # XLA's count includes the elementwise ops and Adam, so it is a bit above the matmul count.
    assert 1.0 <= row["xla_flops_per_step"] / row["analytic_matmul_flops_per_step"] < 1.2
  table = (tmp_path / "bench.md").read_text()
  assert "| gan_seed | 64 |" in table and "| vae | 64 |" in table
  assert "| gan_seed | 64 |" in proc.stdout
