"""End to end in-process: `train_and_evaluate` leaves a complete run folder, and a stopped and
resumed run ends bit-identical to an uninterrupted one.

Schedule (conftest.TINY_RUN): 12 steps, logs at 4/8/12, samples and checkpoints at 6/12,
dispatches of up to 4 steps — 4 does not divide 6, so dispatches are clipped at boundaries.
"""

import glob
import json
import math
import os
import shutil
import struct

import jax
import numpy as np
import pytest
from PIL import Image

from genimg_jax.errors import UserError
from genimg_jax.generate import load_run
from genimg_jax.train.loop import train_and_evaluate
from tests.conftest import (make_tiny_conv_vae_config, make_tiny_gan_config, make_tiny_vae_config,
                            make_tiny_zoo_config)

LOG_STEPS = [4, 8, 12]


def _metrics_lines(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _event_scalars(workdir):
  """{tag: {step: value}} from the run's TensorBoard event file(s) (TFRecord framing)."""
  from tensorboardX.proto import event_pb2

  paths = glob.glob(os.path.join(workdir, "events.out.tfevents.*"))
  assert paths, "no TensorBoard event file"
  scalars = {}
  for path in paths:
    with open(path, "rb") as f:
      data = f.read()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      for value in event.summary.value:
        if value.HasField("simple_value"):
          scalars.setdefault(value.tag, {})[event.step] = value.simple_value
  return scalars


def _checkpoint_steps(workdir):
  names = os.listdir(os.path.join(workdir, "checkpoints"))
  return sorted(int(n) for n in names if n.isdigit())


def _assert_png(path, min_side):
  assert os.path.isfile(path), path
  with Image.open(path) as image:
    assert image.format == "PNG"
    assert min(image.size) >= min_side


def _assert_common_outputs(workdir, config, loss_names):
  assert _checkpoint_steps(workdir) == [6, 12]
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    saved = json.load(f)
  assert saved["family"] == config.family and saved["num_steps"] == 12
  assert saved["latent_dim"] == config.latent_dim
  train_lines = [line for line in _metrics_lines(workdir) if not any(
      k.startswith("test_") for k in line)]
  assert [line["step"] for line in train_lines] == LOG_STEPS
  for line in train_lines:
    for name in (*loss_names, "steps_per_sec"):
      assert isinstance(line[name], float) and math.isfinite(line[name]), (name, line)
    assert line["steps_per_sec"] > 0
  for step in (6, 12):
    _assert_png(os.path.join(workdir, f"samples_{step}.png"), 4 * 28)  # 16 samples: 4 × 4.
  assert not glob.glob(os.path.join(workdir, "samples_4.png"))  # Only at sample steps.
  scalars = _event_scalars(workdir)
  for name in loss_names:
    assert sorted(scalars[name]) == LOG_STEPS
    for line in train_lines:  # TensorBoard and metrics.jsonl agree.
      assert scalars[name][line["step"]] == pytest.approx(line[name], rel=1e-6)
  return train_lines


def test_gan_run_folder(trained_gan_run):
  workdir, final = trained_gan_run["workdir"], trained_gan_run["final"]
  lines = _assert_common_outputs(workdir, trained_gan_run["config"], ("d_loss", "g_loss"))
  assert final["d_loss"] == pytest.approx(lines[-1]["d_loss"])
  assert final["g_loss"] == pytest.approx(lines[-1]["g_loss"])
  # Near chance after 12 tiny steps: L_D ≈ 2 ln 2 ≈ 1.39, L_G ≈ ln 2 (loose: it trains).
  assert 0.3 < final["d_loss"] < 3.0 and 0.1 < final["g_loss"] < 3.0
  _, state, step = load_run(workdir)
  assert step == 12 and int(state.step) == 12


@pytest.mark.slow
def test_vae_run_folder(trained_vae_run):
  workdir, final = trained_vae_run["workdir"], trained_vae_run["final"]
  _assert_common_outputs(workdir, trained_vae_run["config"], ("loss", "neg_elbo", "kl"))
  for step in (6, 12):
    _assert_png(os.path.join(workdir, f"reconstructions_{step}.png"), 28)
  neg_elbo = final["test_neg_elbo"]
  # Untrained-ish Bernoulli VAE: close to 784 ln 2 ≈ 543 nats, certainly positive and finite.
  assert math.isfinite(neg_elbo) and 100 < neg_elbo < 800
  assert neg_elbo == pytest.approx(final["test_recon"] + final["test_kl"], rel=1e-5)
  assert final["test_kl"] >= 0
  assert final["test_bits_per_dim"] == pytest.approx(neg_elbo / (784 * math.log(2)), rel=1e-6)
  test_lines = [line for line in _metrics_lines(workdir) if "test_neg_elbo" in line]
  assert len(test_lines) == 1 and test_lines[0]["step"] == 12
  assert test_lines[0]["test_neg_elbo"] == pytest.approx(neg_elbo)


# ----------------------------------------------------------------------------- resume


def _assert_states_bit_identical(workdir_a, workdir_b):
  _, state_a, step_a = load_run(workdir_a)
  _, state_b, step_b = load_run(workdir_b)
  assert step_a == step_b == 12
  leaves_a, tree_a = jax.tree_util.tree_flatten(state_a)
  leaves_b, tree_b = jax.tree_util.tree_flatten(state_b)
  assert tree_a == tree_b
  assert len(leaves_a) > 5  # Params, optimiser states, step, key, data order.
  for a, b in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# Every kind of family state: a GAN, a VAE, a conv VAE, BatchNorm statistics (dcgan), n_critic
# 5 with an EMA of G (wgan_gp). A kill -9 between two checkpoints (test_e2e_resume.py) leaves
# what the split run here leaves, so this is where a state that misses a leaf in its
# checkpoint is caught, model by model.
RESUME_CASES = {"gan": ("trained_gan_run", make_tiny_gan_config),
                "vae": ("trained_vae_run", make_tiny_vae_config),
                "conv_vae": ("trained_conv_vae_run", make_tiny_conv_vae_config),
                "dcgan": (None, lambda **kw: make_tiny_zoo_config("dcgan", **kw)),
                # Constant rate: under its linear decay num_steps is a model setting (the
                # split run below could not change it); the decay reads the count in the state.
                "wgan_gp_ema": (None, lambda **kw: make_tiny_zoo_config(
                    "wgan_gp", ema_decay=0.9, lr_schedule="constant", **kw))}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_is_bit_identical(case, request, tmp_path):
  fixture, make_config = RESUME_CASES[case]
  if fixture:
    uninterrupted = request.getfixturevalue(fixture)["workdir"]
  else:
    uninterrupted = str(tmp_path / "uninterrupted")
    train_and_evaluate(make_config(), uninterrupted)
  workdir = str(tmp_path / "split")
  train_and_evaluate(make_config(num_steps=6), workdir)
  assert _checkpoint_steps(workdir) == [6]
  assert load_run(workdir)[2] == 6
  train_and_evaluate(make_config(num_steps=12), workdir)
  assert _checkpoint_steps(workdir) == [6, 12]
  _assert_states_bit_identical(uninterrupted, workdir)
  # The resumed run's metrics continue the first part's: no step logged twice.
  steps = [line["step"] for line in _metrics_lines(workdir) if "test_neg_elbo" not in line]
  assert steps == sorted(set(steps)) and steps[-1] == 12


def test_resume_with_a_changed_model_setting_is_refused(trained_gan_run, tmp_path):
  workdir = str(tmp_path / "copy")
  shutil.copytree(trained_gan_run["workdir"], workdir)
  with pytest.raises(UserError, match="latent_dim") as error:
    train_and_evaluate(make_tiny_gan_config(latent_dim=4, num_steps=16), workdir)
  assert "\n" not in str(error.value)
  # Nothing was lost: the checkpoints are still there and still load as the old model.
  assert _checkpoint_steps(workdir) == [6, 12]
  family, state, step = load_run(workdir)
  assert step == 12 and family.latent_dim == trained_gan_run["config"].latent_dim


def test_resume_may_change_schedule_keys(trained_gan_run, tmp_path):
  workdir = str(tmp_path / "copy")
  shutil.copytree(trained_gan_run["workdir"], workdir)
  final = train_and_evaluate(
      make_tiny_gan_config(num_steps=16, steps_per_dispatch=2, log_every=2), workdir)
  assert math.isfinite(final["d_loss"])
  _, state, step = load_run(workdir)
  assert step == 16 and int(state.step) == 16
  steps = [line["step"] for line in _metrics_lines(workdir)]
  assert steps == [4, 8, 12, 14, 16]
