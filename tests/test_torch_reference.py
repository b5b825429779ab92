"""benchmarks/torch_reference.py and compare.py: without torch, one line and exit 2; with torch,
every PyTorch network has the Flax one's parameters and multiply-adds, and tiny runs produce
every requested row (both sides, both modes)."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import compare
from benchmarks import torch_reference as ref

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = {name: os.path.join(REPO_ROOT, "benchmarks", f"{name}.py")
           for name in ("torch_reference", "compare")}
HIDE_TORCH = "import sys\nsys.modules['torch'] = None  # `import torch` raises ImportError.\n"
TORCH_REASON = "PyTorch is not installed: the reference rows need it (pip install torch)"


def _run(script, args, env=None, timeout=900):
  env = dict(env or os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, SCRIPTS[script], *args], check=False, cwd=REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_without_torch_one_line_and_exit_2(script, tmp_path):
  (tmp_path / "sitecustomize.py").write_text(HIDE_TORCH)
  proc = _run(script, ["--models", "vae", "--batch_sizes", "8"],
              env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=120)
  assert proc.returncode == ref.NO_TORCH_EXIT, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "PyTorch is not installed" in lines[0], proc.stderr
  assert proc.stdout == ""


def test_a_mismatch_names_the_network_and_the_counts():
  flax = {"params": {"generator": 10, "discriminator": 5}, "macs": {"generator": 7,
                                                                     "discriminator": 3}}
  compare.check_equal_work(flax, {"params": {"generator": 10, "discriminator": 5},
                                  "macs": {"generator": 7, "discriminator": 3}})
  with pytest.raises(compare.WorkMismatch, match="discriminator params: PyTorch 6 vs Flax 5"):
    compare.check_equal_work(flax, {"params": {"generator": 10, "discriminator": 6},
                                    "macs": {"generator": 7, "discriminator": 3}})


@pytest.mark.parametrize("model", ref.MODELS)
def test_pytorch_networks_have_the_flax_parameters_and_macs(model):
  torch = pytest.importorskip("torch", reason=TORCH_REASON)
  import jax

  from benchmarks import flops, rows
  from genimg_jax.train.families import build_family
  config = rows.load_config(model, "float32", "jit")
  shape = rows.image_shape_of(config, 1)
  flax = compare.flax_counts(jax, flops, build_family(config, shape, rows.NUM_CLASSES), config,
                             shape)
  counts = ref.torch_counts(ref.load_config(model), shape, torch.device("cpu"))
  assert counts["params"] == flax["params"] and counts["macs"] == flax["macs"]


@pytest.mark.parametrize("model", ("cgan", "cvae", "iwae"))
def test_models_without_a_reference_say_so(model):
  torch = pytest.importorskip("torch", reason=TORCH_REASON)
  with pytest.raises(ValueError, match="no PyTorch reference"):
    ref.torch_counts(ref.load_config(model), (28, 28, 1), torch.device("cpu"))


def test_torch_reference_prints_one_row_per_model_batch_and_mode():
  pytest.importorskip("torch", reason=TORCH_REASON)
  proc = _run("torch_reference", ["--models", "gan_seed,vae", "--batch_sizes", "8",
                                  "--modes", "eager", "--windows", "1", "--min_window_s", "0"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [json.loads(line) for line in proc.stdout.splitlines()]
  assert [(r["model"], r["batch_size"], r["mode"]) for r in rows] == [
      ("gan_seed", 8, "eager"), ("vae", 8, "eager")]
  for r in rows:
    assert r["samples_per_s"] > 0 and r["steps_per_s"] > 0 and r["device"] == "cpu", r
    assert r["param_count"] == sum(r["params"].values()) > 0 and r["torch_version"]
  assert rows[0]["params"] == {"generator": 1_486_352, "discriminator": 1_460_225}


@pytest.mark.slow
def test_compare_alternates_jax_eager_and_compiled_windows(tmp_path):
  pytest.importorskip("torch", reason=TORCH_REASON)
  out = tmp_path / "compare.json"
  proc = _run("compare", ["--models", "gan_seed,vae", "--batch_sizes", "8", "--windows", "2",
                          "--min_window_s", "0", "--steps_per_dispatch", "2",
                          "--modes", "eager,compile", "--out", str(out)])
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  result, table = json.loads(out.read_text()), (tmp_path / "compare.md").read_text()
  assert [(r["model"], r["batch_size"]) for r in result["rows"]] == [("gan_seed", 8), ("vae", 8)]
  for r in result["rows"]:
    for side in ("jax", "eager", "compile"):
      assert r["sides"][side]["samples_per_s"] > 0, (r["model"], side)
      assert len(r["sides"][side]["steps_per_s_windows"]) == 2
    assert r["sides"]["compile"]["compile_s"] >= 0 and r["sides"]["jax"]["compile_s"] > 0
    assert r["jax_over_eager"] > 0 and r["jax_over_compile"] > 0
    assert r["analytic_flops_per_step"] > 0 and f"| {r['model']} | 8 |" in table
  assert result["rows"][0]["analytic_flops_per_step"] == 8 * 31_942_656  # The seed GAN.
  for key in ("jax_version", "flax_version", "torch_version", "torch_device_name", "cpu_name"):
    assert result["header"][key], key


@pytest.mark.slow
def test_compare_time_budget_lists_the_rows_it_skipped(tmp_path):
  pytest.importorskip("torch", reason=TORCH_REASON)
  out = tmp_path / "compare.json"
  proc = _run("compare", ["--models", "gan_seed,vae", "--batch_sizes", "8,16",
                          "--time_budget_s", "0.001", "--out", str(out)], timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads(out.read_text())["rows"]
  assert [r.get("skipped") for r in rows] == ["time budget"] * 4
  assert "- vae, batch 16: skipped: time budget" in (tmp_path / "compare.md").read_text()
