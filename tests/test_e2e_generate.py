"""`python -m genimg_jax.generate`: samples of a run's checkpoint as float32 [N, H, W, C] in [0, 1]
plus a PNG grid; a missing step or run folder is one line on stderr and a non-zero exit."""

import os

import numpy as np
import pytest
from PIL import Image

from genimg_jax import generate
from genimg_jax.evaluation import samples as samples_lib
from tests.conftest import run_python

pytestmark = pytest.mark.slow


def _generate(workdir, out, *extra):
  return run_python(["-m", "genimg_jax.generate", "--workdir", workdir, "--num", "10",
                     "--out", out, *extra])


def _assert_one_line_error(result):
  assert result.returncode != 0
  assert "Traceback" not in result.stdout + result.stderr
  lines = result.stderr.strip("\n").split("\n")
  assert len(lines) == 1 and lines[0].strip(), result.stderr
  return lines[0]


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_generate_writes_npy_and_png(family, trained_gan_run, trained_vae_run, tmp_path):
  run = {"gan": trained_gan_run, "vae": trained_vae_run}[family]
  out = str(tmp_path / "samples.npy")
  result = _generate(run["workdir"], out)
  assert result.returncode == 0, result.stderr
  samples = np.load(out)
  assert samples.dtype == np.float32
  assert samples.shape == (10, 28, 28, 1)
  assert samples.min() >= 0.0 and samples.max() <= 1.0
  assert np.all(np.isfinite(samples))
  assert not np.allclose(samples[0], samples[1])  # Different latents, different images.
  png = str(tmp_path / "samples.png")
  with Image.open(png) as image:
    assert image.format == "PNG" and min(image.size) >= 3 * 28  # 10 samples: 4 × 3 tiles.
  # Reading a run must not prune its checkpoints.
  assert sorted(os.listdir(os.path.join(run["workdir"], "checkpoints"))) == ["12", "6"]


def test_generate_step_selects_that_checkpoint(trained_gan_run, tmp_path):
  out_6, out_latest = str(tmp_path / "s6.npy"), str(tmp_path / "latest.npy")
  result = _generate(trained_gan_run["workdir"], out_6, "--step", "6")
  assert result.returncode == 0, result.stderr
  assert _generate(trained_gan_run["workdir"], out_latest).returncode == 0
  family, state, step = generate.load_run(trained_gan_run["workdir"], 6)
  assert step == 6 and int(state.step) == 6
  expected, _ = samples_lib.draw_seeded(family, state, 10, seed=0)
  np.testing.assert_allclose(np.load(out_6), expected, atol=1e-6)
  assert not np.allclose(np.load(out_6), np.load(out_latest))  # Step 12 is another model.


def test_generate_samples_depend_on_the_seed_not_the_batch_size(trained_gan_run, tmp_path):
  outs = {name: str(tmp_path / f"{name}.npy") for name in ("default", "batch3", "seed1")}
  for name, extra in (("default", []), ("batch3", ["--batch_size", "3"]),
                      ("seed1", ["--seed", "1"])):
    result = _generate(trained_gan_run["workdir"], outs[name], *extra)
    assert result.returncode == 0, result.stderr
  np.testing.assert_allclose(np.load(outs["batch3"]), np.load(outs["default"]), atol=1e-6)
  assert not np.allclose(np.load(outs["seed1"]), np.load(outs["default"]))


def test_generate_missing_step_is_one_line(trained_gan_run, tmp_path):
  out = str(tmp_path / "none.npy")
  line = _assert_one_line_error(_generate(trained_gan_run["workdir"], out, "--step", "7"))
  assert "7" in line and "12" in line  # Names the step asked for and the ones available.
  assert not os.path.exists(out)


def test_generate_missing_workdir_is_one_line(tmp_path):
  missing = str(tmp_path / "no_such_run")
  line = _assert_one_line_error(_generate(missing, str(tmp_path / "x.npy")))
  assert "no_such_run" in line
