"""Every model of configs/ (found there: a new configs/NAME.py joins without a test edit) trains
20 steps on the embedded digits, by family: GANs in-process at their architecture's SMALL widths,
VAEs through `python train.py --model NAME` with the real config (its widths, objective, β)."""

import json
import math
import os

import jax
import numpy as np
import pytest

from tests.conftest import make_tiny_zoo_config, run_python, zoo_models

pytestmark = pytest.mark.slow


def _finite(tree) -> bool:
  return all(bool(np.all(np.isfinite(x))) for x in jax.tree_util.tree_leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.floating))


@pytest.mark.parametrize("model", zoo_models("gan"))
def test_every_gan_config_trains_20_steps_on_the_embedded_data(model, tmp_path):
  """train_and_evaluate on mnist_embedded (resized to 32 px for the standard CNN) for 20 steps:
  finite losses and parameters, a sample grid, a checkpoint."""
  from genimg_jax.generate import load_run
  from genimg_jax.train.loop import train_and_evaluate

  config = make_tiny_zoo_config(model, num_steps=20, log_every=10, sample_every=20,
                                checkpoint_every=20, steps_per_dispatch=10)
  final = train_and_evaluate(config, str(tmp_path))
  assert final and all(np.isfinite(v) for v in final.values()), final
  family, state, step = load_run(str(tmp_path))
  assert step == 20 and _finite(state)
  assert (tmp_path / "samples_20.png").is_file()
  side = 32 if config.image_size else 28
  latents, _ = family.grid_latents(jax.random.PRNGKey(0), 4)
  assert family.generate(state, latents).shape[1:] == (side, side, 1)


@pytest.mark.parametrize("name", zoo_models("vae"))
def test_every_vae_config_trains_20_steps_without_nan(name, tmp_path):
  """`python train.py --model NAME` with the real config (its widths, objective, β): 20 steps
  on the embedded digits (literature configs name a prepared data set, and the embedded one
  has no validation split to select on), batch 32; a NaN / Inf would stop it with exit 3."""
  workdir = str(tmp_path / name)
  result = run_python(["train.py", "--model", name, "--workdir", workdir,
                       "--config.dataset=mnist_embedded", "--config.select_model=last",
                       "--config.num_steps=20", "--config.batch_size=32",
                       "--config.steps_per_dispatch=10", "--config.log_every=10",
                       "--config.sample_every=20", "--config.checkpoint_every=20",
                       "--config.num_grid_samples=20", "--config.num_recon=4"], timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    lines = [json.loads(line) for line in f if line.strip()]
  assert [line["step"] for line in lines] == [10, 20, 20]  # Two logs, then the test bound.
  for line in lines:
    assert all(math.isfinite(v) for v in line.values()), line
  test = lines[-1]
  assert 100 < test["test_neg_elbo"] < 800, test  # Near 784 ln 2 ≈ 543 nats after 20 steps.
  assert test["test_neg_elbo"] == pytest.approx(test["test_recon"] + test["test_kl"], rel=1e-5)
  assert os.path.isfile(os.path.join(workdir, "samples_20.png"))
  assert os.path.isfile(os.path.join(workdir, "reconstructions_20.png"))
