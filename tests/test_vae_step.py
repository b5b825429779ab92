"""The VAE zoo (issue 7): conv_vae, cvae, beta_vae, iwae — one family, one module file each.

- Closed forms: log N against scipy; the IWAE bound against a float64 log-mean-exp; IWAE with
  k = 1 equals the one-sample Monte-Carlo ELBO on the same z exactly, and the analytic-KL VAE
  loss in expectation; L_k ≥ ELBO and grows with k.
- Networks: conv shapes, labels change the output, one-line errors for shapes, objectives,
  architectures and unlabelled data.
- Training: every VAE config runs 20 steps on the embedded digits without NaN; a cvae trained
  briefly draws the class it is asked for (judged by a classifier trained here).
"""

import importlib
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from genimg_jax import models
from genimg_jax.data import embedded
from genimg_jax.errors import UserError
from genimg_jax.losses import vae as vae_losses
from genimg_jax.models import conv_vae
from genimg_jax.train import compiled, run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_conv_vae_config, make_tiny_vae_config, run_python

IMAGE_SHAPE = (28, 28, 1)
VAE_CONFIGS = ("vae", "cvae", "iwae", "conv_vae", "beta_vae")


def _config(name, **overrides):
  config = importlib.import_module(f"configs.{name}").get_config()
  config.model = name
  config.update(overrides)
  return config


def _init(family, seed=0, shape=IMAGE_SHAPE):
  return jax.jit(lambda k: family.init_state(k, 16, shape))(jax.random.PRNGKey(seed))


@pytest.fixture(scope="module")
def digits():
  """The first 512 embedded training digits: uint8 [512, 28, 28, 1], int32 [512]."""
  images, labels = embedded.load("train")
  return np.asarray(images[:512]), np.asarray(labels[:512])


# ----------------------------------------------------------------------------- closed forms


@pytest.fixture(scope="module")
def trained_vae(digits):
  """An MLP VAE after 150 Adam steps on 512 digits (so q(z|x) is informative), and a batch."""
  config = make_tiny_vae_config(encoder_hidden=(64,), decoder_hidden=(64,), latent_dim=8)
  family = build_family(config, IMAGE_SHAPE)
  state = _init(family)
  step = jax.jit(family.train_step)
  images, labels = digits
  for i in range(150):
    batch = {"image": images[(i % 8) * 64:(i % 8 + 1) * 64]}
    state, _ = step(state, batch, jax.random.PRNGKey(i))
  return config, family, state, images[:16]


def test_iwae_with_one_sample_is_the_monte_carlo_elbo_on_the_same_z(trained_vae):
  """L_1 = log p(x|z) + log p(z) − log q(z|x) at the z the ELBO objective draws from the same
  key: exactly the one-sample Monte-Carlo ELBO, recomputed here with numpy and scipy."""
  config, elbo_family, state, images_u8 = trained_vae
  iwae_family = build_family(_config("vae", **{**config.to_dict(), "objective": "iwae",
                                               "num_importance_samples": 1}), IMAGE_SHAPE)
  x = jnp.asarray(images_u8, jnp.float32) / 255.0
  key = jax.random.PRNGKey(3)
  iwae_loss, _ = jax.jit(iwae_family.loss)(state.params, x, None, key)
  elbo_loss, elbo_parts = jax.jit(elbo_family.loss)(state.params, x, None, key)

  mean, logvar = (np.asarray(a, np.float64) for a in
                  elbo_family.model.apply(state.params, x, method="encode"))
  eps = np.asarray(jax.random.normal(key, (1, *mean.shape)), np.float64)[0]
  z = mean + np.exp(0.5 * logvar) * eps
  logits = np.asarray(elbo_family.model.apply(state.params, jnp.asarray(z, jnp.float32),
                                              method="decode"), np.float64).reshape(16, -1)
  xs = np.asarray(x, np.float64).reshape(16, -1)
  recon = np.sum(xs * np.logaddexp(0, -logits) + (1 - xs) * np.logaddexp(0, logits), axis=1)
  log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(1)
  log_p = stats.norm.logpdf(z).sum(1)
  monte_carlo_neg_elbo = np.mean(recon + log_q - log_p)
  np.testing.assert_allclose(iwae_loss, monte_carlo_neg_elbo, rtol=1e-5)
  # The same z: the ELBO objective's reconstruction term is this one (its KL is analytic).
  np.testing.assert_allclose(elbo_parts["recon"], recon.mean(), rtol=1e-5)
  assert not np.isclose(float(iwae_loss), float(elbo_loss), rtol=1e-4)  # MC KL ≠ analytic KL.


def test_iwae_with_one_sample_equals_vae_loss_in_expectation(trained_vae):
  """E_ε[L_1 loss] = the analytic-KL negative ELBO's expectation: over 400 keys the mean of
  their difference is within 4 standard errors of 0 (and the test can see a 1-nat bias)."""
  config, elbo_family, state, images_u8 = trained_vae
  iwae_family = build_family(_config("vae", **{**config.to_dict(), "objective": "iwae",
                                               "num_importance_samples": 1}), IMAGE_SHAPE)
  x = jnp.asarray(images_u8, jnp.float32) / 255.0
  keys = jax.random.split(jax.random.PRNGKey(4), 400)
  both = jax.jit(jax.vmap(lambda k: (iwae_family.loss(state.params, x, None, k)[0],
                                     elbo_family.loss(state.params, x, None, k)[0])))
  iwae_losses, elbo_losses = (np.asarray(a, np.float64) for a in both(keys))
  diff = iwae_losses - elbo_losses  # Same z per key: only log q − log p vs the analytic KL.
  standard_error = diff.std(ddof=1) / math.sqrt(len(diff))
  assert 0 < standard_error < 0.25, standard_error
  assert abs(diff.mean()) < 4 * standard_error, (diff.mean(), standard_error)


def test_iwae_bound_is_above_the_elbo_and_grows_with_k(trained_vae):
  config, family, state, images_u8 = trained_vae
  log_w = np.asarray(jax.jit(family.log_importance_weights, static_argnums=4)(
      state, images_u8, None, jax.random.PRNGKey(5), 600), np.float64)  # [600, 16]
  assert log_w.shape == (600, 16)
  bound = lambda group: np.asarray(vae_losses.iwae_bound(jnp.asarray(group)), np.float64)
  # Independent groups of k samples: E[L_k] estimated per image from 600 / k groups.
  l1 = log_w.mean(0)
  l5 = np.mean([bound(log_w[i:i + 5]) for i in range(0, 600, 5)], axis=0)
  l50 = np.mean([bound(log_w[i:i + 50]) for i in range(0, 600, 50)], axis=0)
  assert np.mean(l5 - l1) > 0.5 and np.mean(l50 - l5) > 0.2, (l1.mean(), l5.mean(), l50.mean())
  assert np.all(l5 >= l1) and np.all(l50 >= l5)  # Jensen, group by group.
  # The family's loss with objective iwae is −mean L_k of its own k samples (k = 5 here).
  iwae_family = build_family(_config("iwae", **{**config.to_dict(), "objective": "iwae",
                                                "num_importance_samples": 5}), IMAGE_SHAPE)
  x = jnp.asarray(images_u8, jnp.float32) / 255.0
  key = jax.random.PRNGKey(6)
  loss, parts = iwae_family.loss(state.params, x, None, key)
  own = np.asarray(family.log_importance_weights(state, images_u8, None, key, 5), np.float64)
  np.testing.assert_allclose(loss, -np.mean(bound(own)), rtol=1e-5)
  np.testing.assert_allclose(parts["neg_elbo"], -own.mean(), rtol=1e-5)
  assert float(loss) < float(parts["neg_elbo"])


# ----------------------------------------------------------------------------- networks


def test_conv_vae_layers_and_shapes():
  """Parameter and output shapes at three image sizes, traced abstractly (jax.eval_shape: the
  shapes XLA would compute, without compiling three conv networks)."""
  for shape in ((28, 28, 1), (32, 32, 3), (64, 64, 3)):
    family = build_family(_config("conv_vae"), shape)
    state = jax.eval_shape(lambda k: family.init_state(k, 16, shape), jax.random.PRNGKey(0))
    params = state.params["params"]
    enc, dec = params["encoder"], params["decoder"]
    h4, w4 = shape[0] // 4, shape[1] // 4
    assert enc["Conv_0"]["kernel"].shape == (4, 4, shape[2], 32)
    assert enc["Conv_1"]["kernel"].shape == (4, 4, 32, 64)
    assert enc["Dense_0"]["kernel"].shape == (h4 * w4 * 64, 256)
    assert enc["mean"]["kernel"].shape == enc["logvar"]["kernel"].shape == (256, 32)
    assert dec["Dense_0"]["kernel"].shape == (32, 256)
    assert dec["Dense_1"]["kernel"].shape == (256, h4 * w4 * 64)
    assert dec["ConvTranspose_0"]["kernel"].shape == (4, 4, 64, 32)
    assert dec["ConvTranspose_1"]["kernel"].shape == (4, 4, 32, shape[2])
    images = jax.ShapeDtypeStruct((2, *shape), jnp.uint8)
    assert jax.eval_shape(family.reconstruct, state, images).shape == (2, *shape)
    assert jax.eval_shape(lambda s, x: family.log_importance_weights(
        s, x, None, jax.random.PRNGKey(0), 3), state, images).shape == (3, 2)


def test_conv_vae_rejects_shapes_it_cannot_take():
  with pytest.raises(ValueError, match="multiples of 4"):
    conv_vae.vae_network(_config("conv_vae"), (30, 28, 1))
  with pytest.raises(UserError, match="image_size") as error:
    build_family(_config("conv_vae"), (30, 30, 3))
  assert "\n" not in str(error.value) and "30x30x3" in str(error.value)
  conv_vae.check_image_shape((32, 32, 3), (8, 8, 8))  # 3 halvings: 32 is fine ...
  with pytest.raises(ValueError, match="multiples of 8"):
    conv_vae.check_image_shape((28, 28, 1), (8, 8, 8))  # ... 28 is not.


@pytest.mark.parametrize("name", ["cvae", "conv_cvae"])
def test_labels_change_the_networks_outputs(name):
  config = (_config("cvae") if name == "cvae"
            else make_tiny_conv_vae_config(conditional=True, model=name))
  family = build_family(config, IMAGE_SHAPE, num_classes=10)
  assert family.num_classes == 10
  state = _init(family)
  z = jax.random.normal(jax.random.PRNGKey(0), (2, config.latent_dim))
  images = jax.random.randint(jax.random.PRNGKey(1), (2, *IMAGE_SHAPE), 0, 256).astype(jnp.uint8)
  decode = lambda label: family.generate(state, {"z": z, "label": jnp.full((2,), label)})
  encode = lambda label: family.model.apply(state.params, images.astype(jnp.float32) / 255,
                                            jnp.full((2,), label), method="encode")[0]
  assert not np.allclose(decode(0), decode(7))  # Decoder takes the label ...
  assert not np.allclose(encode(0), encode(7))  # ... and so does the encoder.
  np.testing.assert_array_equal(decode(3), decode(3))
  with pytest.raises(ValueError, match="labels"):
    family.model.apply(state.params, z, method="decode")


def test_unconditional_ignores_labels_and_conditional_grid_has_one_row_per_class():
  family = build_family(_config("vae"), IMAGE_SHAPE, num_classes=10)
  assert family.num_classes == 0
  state = _init(family)
  images = jnp.full((3, *IMAGE_SHAPE), 77, jnp.uint8)
  np.testing.assert_array_equal(family.reconstruct(state, images, jnp.array([1, 2, 3])),
                                family.reconstruct(state, images, None))
  latents, cols = family.grid_latents(jax.random.PRNGKey(0), 64)
  assert cols is None and latents.shape == (64, 32)
  cvae = build_family(_config("cvae"), IMAGE_SHAPE, num_classes=10)
  latents, cols = cvae.grid_latents(jax.random.PRNGKey(0), 64)
  assert cols == 6 and latents["z"].shape == (60, 32)
  np.testing.assert_array_equal(latents["label"], np.repeat(np.arange(10), 6))
  assert cvae.generate(_init(cvae), latents).shape == (60, *IMAGE_SHAPE)
  drawn = cvae.sample_latents(jax.random.PRNGKey(1), 500)
  assert drawn["z"].shape == (500, 32) and set(np.asarray(drawn["label"])) == set(range(10))


# ----------------------------------------------------------------------------- one-line errors


def test_conditional_model_on_unlabelled_data_is_one_line():
  with pytest.raises(UserError, match="no labels") as error:
    build_family(_config("cvae"), IMAGE_SHAPE, num_classes=0)
  assert "\n" not in str(error.value) and "cvae" in str(error.value)


@pytest.mark.parametrize("overrides,match", [
    ({"objective": "elbow"}, "objective"),
    ({"num_importance_samples": 0}, "num_importance_samples"),
    ({"num_importance_samples": -3}, "num_importance_samples"),
    ({"beta": 4.0}, "beta"),
    ({"conv_channels": ()}, "conv_channels"),
])
def test_bad_objective_settings_are_one_line(overrides, match):
  config = _config("iwae")
  config.conv_channels = (32, 64)  # Present so its check runs (ignored by the MLP).
  config.update(overrides)
  with pytest.raises(UserError, match=match) as error:
    run_config.validate(config)
  assert "\n" not in str(error.value)


def test_unknown_or_non_vae_architecture_is_one_line():
  with pytest.raises(UserError, match="mlp") as error:
    build_family(_config("vae", architecture="resnet9"), IMAGE_SHAPE)
  assert "\n" not in str(error.value) and "resnet9" in str(error.value)
  assert set(models.available()) >= {"mlp", "conv_vae"}


def test_cli_bad_objective_is_one_line(tmp_path):
  result = run_python(["train.py", "--model", "iwae", "--workdir", str(tmp_path / "a"),
                       "--config.objective=elbow"], timeout=120)
  assert result.returncode != 0 and "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and "objective" in lines[0], result.stderr


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", VAE_CONFIGS)
def test_every_vae_config_trains_20_steps_without_nan(name, tmp_path):
  """`python train.py --model NAME` with the real config (its widths, objective, β): 20 steps
  on the embedded digits, batch 32; a NaN / Inf would stop it with exit 3."""
  workdir = str(tmp_path / name)
  result = run_python(["train.py", "--model", name, "--workdir", workdir,
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


class _Classifier:
  """A softmax regression on pixels, trained on 512 real digits: judges generated classes."""

  def __init__(self, images_u8, labels):
    x = jnp.asarray(images_u8, jnp.float32).reshape(len(images_u8), -1) / 255.0
    y = jnp.asarray(labels)

    def loss(w):
      logits = x @ w["w"] + w["b"]
      return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y)) + 1e-3 * jnp.sum(
          w["w"] ** 2)

    tx = optax.adam(0.01)
    weights = {"w": jnp.zeros((784, 10)), "b": jnp.zeros(10)}
    opt = tx.init(weights)

    @jax.jit
    def step(weights, opt):
      grads = jax.grad(loss)(weights)
      updates, opt = tx.update(grads, opt)
      return optax.apply_updates(weights, updates), opt

    for _ in range(300):
      weights, opt = step(weights, opt)
    self.weights = weights

  def predict(self, images):
    x = jnp.asarray(images, jnp.float32).reshape(len(images), -1)
    return np.asarray(jnp.argmax(x @ self.weights["w"] + self.weights["b"], axis=1))


def test_cvae_draws_the_class_it_is_asked_for(digits):
  """A small cvae (z ∈ R², so the label must carry the class) trained 600 steps on 512
  digits; its samples for each asked class are judged by a classifier trained on the same
  digits. Were the label ignored, the asked class would be hit about 1 time in 10 (planted
  once: the same run with conditional=False scores ≈ 0.1)."""
  images, labels = digits
  classifier = _Classifier(images, labels)
  assert np.mean(classifier.predict(images / 255.0) == labels) > 0.9
  config = make_tiny_vae_config(conditional=True, encoder_hidden=(128,), decoder_hidden=(128,),
                                latent_dim=2, batch_size=64)
  family = build_family(config, IMAGE_SHAPE, num_classes=10)
  mesh = compiled.make_mesh()
  state = jax.jit(lambda k: family.init_state(k, 512, IMAGE_SHAPE),
                  out_shardings=compiled.replicated(mesh))(jax.random.PRNGKey(0))
  data = compiled.place_data(images, labels, mesh)
  multi_step = compiled.MultiStep(family.train_step, 64, mesh)
  for _ in range(12):
    state, _ = multi_step(state, data, 50)
  asked = jnp.repeat(jnp.arange(10, dtype=jnp.int32), 20)
  z = jax.random.normal(jax.random.PRNGKey(1), (200, 2))
  samples = np.asarray(family.generate(state, {"z": z, "label": asked}))
  predicted = classifier.predict(samples)
  accuracy = float(np.mean(predicted == np.asarray(asked)))
  assert accuracy > 0.6, (accuracy, predicted.reshape(10, 20))
  # Every class is drawn when asked (not one class reaching 60% on its own).
  per_class = (predicted == np.asarray(asked)).reshape(10, 20).mean(1)
  assert np.sum(per_class > 0.3) >= 8, per_class
