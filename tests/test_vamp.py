"""The VampPrior VAE (models/vamp.py, configs/vamp_pythae.py) and what the VAE family gained for
it: a network's own prior, the Monte-Carlo KL, the KL warm-up and RMSprop.

- The mixture prior equals a loop over its components; with K = 1 it is the Gaussian of the one
  pseudo-input's encoding; GatedDense and both Hardtanh clips follow their formulas (with
  PyTorch's gradient at the clip ends); the pseudo-inputs are Linear(K → D) of the identity.
- The loss, the test bound and the importance weights use log q(z|x) − log p(z) at the sampled
  z (recomputed here with numpy); the IWAE bound at k = 1 is that ELBO; prior samples are
  μ_k + σ_k·ε of the component the noise picks.
- Warm-up weights are pythae's β = min(epoch / 100, 1) with epochs counted from 1, also under
  a β sweep on the runs axis; warm-up with the iwae objective, or swept, is refused in one line.
- RMSprop's two steps equal torch.optim.RMSprop's closed form; its state does not depend on
  the values; standard-normal VAEs keep their analytic KL and their programs.
- `python train.py --model vamp_pythae` trains at tiny sizes and `genimg_jax.evaluate` gives an
  NLL (slow).
"""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from genimg_jax.config_cli import load_config
from genimg_jax.data import embedded
from genimg_jax.errors import UserError
from genimg_jax.losses import vae as vae_losses
from genimg_jax.models import vamp
from genimg_jax.train import optim, run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_zoo_config, run_python
from tests.test_runs import train as train_runs

IMAGE_SHAPE = (28, 28, 1)
STEPS_PER_EPOCH = 500  # configs/vamp_pythae.py: 50,000 images, batch 100.


def _np(x):
  return np.asarray(x, np.float64)


def _log_normal_np(z, mean, logvar):
  return -0.5 * np.sum(np.log(2 * np.pi) + logvar + (z - mean) ** 2 / np.exp(logvar), axis=-1)


def _mixture_np(z, means, logvars):
  """log (1/K) Σ_k N(z; μ_k, σ_k²), one component at a time (a Python loop)."""
  terms = np.stack([_log_normal_np(z, means[k], logvars[k]) for k in range(len(means))], -1)
  m = terms.max(-1, keepdims=True)
  return (m[..., 0] + np.log(np.exp(terms - m).sum(-1))) - np.log(len(means))


def _tiny(**overrides):
  """vamp_pythae at its SMALL widths on the embedded digits (K = 8, L = 4)."""
  return make_tiny_zoo_config("vamp_pythae", dataset="mnist_embedded", **overrides)


@pytest.fixture(scope="module")
def digits():
  images, _ = embedded.load("train")
  return (np.asarray(images[:16]) > 127).astype(np.float32)  # Binary, in [0, 1].


@pytest.fixture(scope="module")
def tiny():
  """(family, params) of the tiny VampPrior VAE."""
  family = build_family(_tiny(), IMAGE_SHAPE)
  state = jax.jit(lambda k: family.init_state(k, 16, IMAGE_SHAPE))(jax.random.PRNGKey(0))
  return family, state.params


def _apply(family, params, *args, method):
  return family.model.apply(params, *args, method=method)


# ----------------------------------------------------------------------------- the network


def test_mixture_prior_is_the_mean_of_its_components_densities(tiny):
  family, params = tiny
  means, logvars = _apply(family, params, method="prior_components")
  assert means.shape == logvars.shape == (8, 4)
  z = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 4)) * 2.0
  expected = _mixture_np(_np(z), _np(means), _np(logvars))
  np.testing.assert_allclose(_apply(family, params, z, method="log_prior"), expected, rtol=1e-5)
  np.testing.assert_allclose(vae_losses.log_normal_mixture(z, means, logvars), expected,
                             rtol=1e-5)


def test_with_one_pseudo_input_the_prior_is_its_encoded_gaussian():
  family = build_family(_tiny(num_pseudo_inputs=1), IMAGE_SHAPE)
  params = family.init_state(jax.random.PRNGKey(3), 16, IMAGE_SHAPE).params
  u = _apply(family, params, method="pseudo_inputs")
  assert u.shape == (1, *IMAGE_SHAPE)
  mean, logvar = family.model.apply(params, u, None, method="encode")
  z = jax.random.normal(jax.random.PRNGKey(4), (7, 4))
  np.testing.assert_allclose(_apply(family, params, z, method="log_prior"),
                             stats.multivariate_normal(_np(mean[0]), np.diag(np.exp(
                                 _np(logvar[0])))).logpdf(_np(z)), rtol=1e-5)


def test_pseudo_inputs_are_the_clipped_linear_map_of_the_identity(tiny):
  family, params = tiny
  p = params["params"]
  k = p["pseudo_kernel"].shape[0]
  dense_of_identity = _np(np.eye(k) @ _np(p["pseudo_kernel"]) + _np(p["pseudo_bias"]))
  u = _apply(family, params, method="pseudo_inputs")
  np.testing.assert_allclose(_np(u).reshape(k, -1), np.clip(dense_of_identity, 0.0, 1.0),
                             rtol=1e-6)
  bound = 1 / math.sqrt(k)  # PyTorch's Linear default, fan_in = K.
  assert np.all(np.abs(p["pseudo_kernel"]) <= bound) and np.all(np.abs(p["pseudo_bias"]) <= bound)


def test_gated_dense_is_h_times_the_sigmoid_of_g():
  layer = vamp.GatedDense(6)
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
  params = layer.init(jax.random.PRNGKey(1), x)["params"]
  h = _np(x) @ _np(params["h"]["kernel"]) + _np(params["h"]["bias"])
  g = _np(x) @ _np(params["g"]["kernel"]) + _np(params["g"]["bias"])
  np.testing.assert_allclose(layer.apply({"params": params}, x), h / (1 + np.exp(-g)),
                             rtol=1e-5, atol=1e-6)


def test_hardtanh_clips_with_pytorchs_gradient():
  x = jnp.array([-7.0, -6.0, -1.0, 2.0, 3.0])
  np.testing.assert_array_equal(vamp.hardtanh(x, -6.0, 2.0), [-6, -6, -1, 2, 2])
  grad = jax.grad(lambda v: jnp.sum(vamp.hardtanh(v, -6.0, 2.0)))(x)
  np.testing.assert_array_equal(grad, [0, 0, 1, 0, 0])  # 0 at both ends, as torch.


def test_encoder_log_variance_lies_in_its_clip_range(tiny):
  family, params = tiny
  images = jax.random.uniform(jax.random.PRNGKey(2), (64, *IMAGE_SHAPE)) * 50.0  # Far inputs.
  _, logvar = family.model.apply(params, images, None, method="encode")
  assert float(jnp.min(logvar)) >= -6.0 and float(jnp.max(logvar)) <= 2.0
  assert float(jnp.min(logvar)) == -6.0 or float(jnp.max(logvar)) == 2.0  # Some are clipped.


def test_he_initialisation_of_encoder_and_decoder_kernels():
  """N(0, 2/fan_in) kernels, U(±1/√fan_in) biases (the script's he_init and PyTorch's bias)."""
  family = build_family(load_config("vamp_pythae"), IMAGE_SHAPE)
  params = jax.eval_shape(lambda k: family.init_state(k, 16, IMAGE_SHAPE), jax.random.PRNGKey(0))
  real = jax.jit(lambda k: family.init_state(k, 16, IMAGE_SHAPE).params)(jax.random.PRNGKey(0))
  dense = real["params"]["encoder"]["GatedDense_0"]["h"]
  assert params.params["params"]["encoder"]["GatedDense_0"]["h"]["kernel"].shape == (784, 300)
  np.testing.assert_allclose(np.std(dense["kernel"]), math.sqrt(2 / 784), rtol=0.02)
  assert np.max(np.abs(dense["bias"])) <= 1 / math.sqrt(784)
  out = real["params"]["decoder"]["Dense_0"]
  np.testing.assert_allclose(np.std(out["kernel"]), math.sqrt(2 / 300), rtol=0.02)


# ----------------------------------------------------------------------------- the objective


def _posterior_np(family, params, images, key, num):
  """(μ, log σ², z [num, B, L], ε) as the family draws them from `key`."""
  mean, logvar = family.model.apply(params, images, None, method="encode")
  eps = jax.random.normal(key, (num, *mean.shape))
  return _np(mean), _np(logvar), _np(mean) + np.exp(0.5 * _np(logvar)) * _np(eps)


def _bernoulli_nll_np(logits, images):
  logits, x = _np(logits).reshape(len(logits), -1), _np(images).reshape(len(images), -1)
  return np.sum(np.logaddexp(0, -logits) * x + np.logaddexp(0, logits) * (1 - x), axis=1)


def test_elbo_loss_uses_the_monte_carlo_kl_at_the_sampled_z(tiny, digits):
  family, params = tiny
  key = jax.random.PRNGKey(5)
  loss, parts = family.loss(params, digits, None, key, beta=0.3)
  mean, logvar, z = _posterior_np(family, params, digits, key, 1)
  means, logvars = map(_np, _apply(family, params, method="prior_components"))
  kl = _log_normal_np(z[0], mean, logvar) - _mixture_np(z[0], means, logvars)
  recon = _bernoulli_nll_np(family.model.apply(params, jnp.asarray(z[0], jnp.float32), None,
                                               method="decode"), digits)
  np.testing.assert_allclose(loss, np.mean(recon + 0.3 * kl), rtol=1e-5)
  np.testing.assert_allclose(parts["kl"], np.mean(kl), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(parts["neg_elbo"], np.mean(recon + kl), rtol=1e-5)


def test_vae_loss_mc_against_its_formula():
  rng = np.random.RandomState(0)
  logits, images = rng.randn(3, 4, 4, 1), (rng.rand(3, 4, 4, 1) > 0.5).astype(float)
  z, mean, logvar, log_p = rng.randn(3, 2), rng.randn(3, 2), rng.randn(3, 2), rng.randn(3)
  loss, parts = vae_losses.vae_loss_mc(*map(jnp.asarray, (logits, images, z, mean, logvar,
                                                          log_p)), 2.0, "bernoulli", 0.1)
  kl = _log_normal_np(z, mean, logvar) - log_p
  recon = _bernoulli_nll_np(logits, images)
  np.testing.assert_allclose(loss, np.mean(recon + 2.0 * kl), rtol=1e-5)
  np.testing.assert_allclose(parts["kl"], np.mean(kl), rtol=1e-5)


def test_importance_weights_and_test_bound_use_the_learned_prior(tiny, digits):
  family, params = tiny
  state = family.init_state(jax.random.PRNGKey(0), 16, IMAGE_SHAPE).replace(params=params)
  images_u8 = (digits * 255).astype(np.uint8)
  key = jax.random.PRNGKey(6)
  log_w = family.log_importance_weights(state, images_u8, None, key, 3)
  mean, logvar, z = _posterior_np(family, params, digits, key, 3)
  means, logvars = map(_np, _apply(family, params, method="prior_components"))
  recon = np.stack([_bernoulli_nll_np(family.model.apply(
      params, jnp.asarray(z[i], jnp.float32), None, method="decode"), digits) for i in range(3)])
  expected = -recon + _mixture_np(z, means, logvars) - _log_normal_np(z, mean, logvar)
  np.testing.assert_allclose(log_w, expected, rtol=1e-5)
  sums = family.eval_sums(state, images_u8, None, key)
  mean, logvar, z = _posterior_np(family, params, digits, key, 1)
  kl = _log_normal_np(z[0], mean, logvar) - _mixture_np(z[0], means, logvars)
  np.testing.assert_allclose(sums["kl"], np.sum(kl), rtol=1e-4)
  np.testing.assert_allclose(sums["neg_elbo"], sums["recon"] + sums["kl"], rtol=1e-6)


def test_iwae_with_one_sample_is_the_elbo_with_the_learned_prior(tiny, digits):
  family, params = tiny
  iwae = build_family(_tiny(objective="iwae", num_importance_samples=1), IMAGE_SHAPE)
  key = jax.random.PRNGKey(8)
  elbo_loss, elbo_parts = family.loss(params, digits, None, key, beta=1.0)
  iwae_loss, iwae_parts = iwae.loss(params, digits, None, key)
  np.testing.assert_allclose(iwae_loss, elbo_loss, rtol=1e-6)
  np.testing.assert_allclose(iwae_parts["kl"], elbo_parts["kl"], rtol=1e-4, atol=1e-4)


def test_prior_samples_are_the_picked_components_gaussians(tiny):
  family, params = tiny
  noise = jax.random.normal(jax.random.PRNGKey(9), (200, family.noise_dim))
  assert family.noise_dim == 5 and family.sample_latents(jax.random.PRNGKey(0), 3).shape == (3, 5)
  z = _apply(family, params, noise, method="sample_prior")
  means, logvars = map(_np, _apply(family, params, method="prior_components"))
  k = np.minimum(np.floor(stats.norm.cdf(_np(noise[:, 0])) * 8).astype(int), 7)
  np.testing.assert_allclose(z, means[k] + np.exp(0.5 * logvars[k]) * _np(noise[:, 1:]),
                             rtol=1e-5, atol=1e-6)
  assert len(set(k)) == 8  # Every component is drawn.


# ----------------------------------------------------------------------------- warm-up


def _pythae_beta(step: int) -> float:
  """pythae's VAMP: β = 1.0 * epoch / linear_scheduling_steps, capped at 1; the trainer's
  epochs count from 1 (`for epoch in range(1, num_epochs + 1)`)."""
  epoch = step // STEPS_PER_EPOCH + 1
  beta = 1.0 * epoch / 100
  return 1.0 if beta > 1 else beta


def test_warmup_weights_are_pythaes_epochwise_beta():
  config = load_config("vamp_pythae")
  assert (config.kl_warmup_steps, config.kl_warmup_every) == (100 * STEPS_PER_EPOCH,
                                                              STEPS_PER_EPOCH)
  family = build_family(config, IMAGE_SHAPE)
  steps = [0, 1, 499, 500, 501, 18_499, 49_499, 49_500, 49_999, 50_000, 123_456, 999_999]
  steps += [e * STEPS_PER_EPOCH + off for e in range(0, 102) for off in (0, 499)]
  weights = jax.jit(jax.vmap(lambda s: family.kl_weight(s, 1.0)))(jnp.asarray(steps))
  # To the float32 rounding of the division (XLA multiplies by 1/T): one unit in the last place.
  np.testing.assert_allclose(weights, np.float32([_pythae_beta(s) for s in steps]), rtol=1.2e-7)
  np.testing.assert_allclose(family.kl_weight(jnp.asarray(700), 2.5), 2.5 * 0.02, rtol=1e-7)


def test_stepwise_warmup_and_no_warmup():
  w = lambda t, n: float(vae_losses.kl_warmup(jnp.asarray(t), n))
  assert [w(t, 4) for t in (0, 1, 2, 3, 4, 100)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
  family = build_family(_tiny(kl_warmup_steps=0), IMAGE_SHAPE)
  beta = jnp.float32(0.7)
  assert family.kl_weight(jnp.asarray(3), beta) is beta  # Off: β itself, no extra op.


@pytest.mark.slow
def test_warmup_composes_with_a_beta_sweep_on_the_runs_axis():
  """Runs of a β sweep weight the KL by their own β times the shared w_t, as single runs do."""
  images, labels = embedded.load("train")
  data = {"image": np.asarray(images[:64]), "label": np.asarray(labels[:64])}
  warm = dict(kl_warmup_steps=8, kl_warmup_every=2)
  many, metrics = train_runs(_tiny(sweep="beta=0.5,2", **warm), data)
  w = np.array([min(2 * (t // 2 + 1) / 8, 1.0) for t in (3, 4, 5)])  # Steps of the 2nd dispatch.
  np.testing.assert_allclose(metrics["kl_weight"], np.stack([0.5 * w, 2.0 * w], 1), rtol=1e-6)
  single, _ = train_runs(_tiny(beta=2.0, **warm), data)
  for a, b in zip(jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x: x[1], many.runs)),
                  jax.tree_util.tree_leaves(single)):
    np.testing.assert_allclose(a, b, atol=5e-5)


def test_warmup_with_iwae_or_swept_is_one_line():
  with pytest.raises(UserError, match="kl_warmup_steps=10 .*iwae") as error:
    run_config.validate(_tiny(objective="iwae", kl_warmup_steps=10))
  assert "\n" not in str(error.value)
  with pytest.raises(UserError, match="kl_warmup_steps cannot be swept"):
    run_config.validate(_tiny(sweep="kl_warmup_steps=10,20"))
  with pytest.raises(UserError, match="kl_warmup_every"):
    run_config.validate(_tiny(kl_warmup_every=0))


def test_vamp_is_unconditional_and_its_config_is_valid():
  run_config.validate(load_config("vamp_pythae"))
  with pytest.raises(UserError, match="class-conditional") as error:
    run_config.validate(_tiny(conditional=True))
  assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- optimiser


def test_rmsprop_two_steps_equal_pytorchs_closed_form():
  """torch.optim.RMSprop(lr): v_t = α v_{t−1} + (1 − α) g_t², θ_t = θ_{t−1} − lr g_t / (√v_t + ε),
  v_0 = 0, α = 0.99, ε = 1e-8 (outside the root, no bias correction, no momentum)."""
  lr, alpha, eps = 0.01, 0.99, 1e-8
  theta0 = np.array([0.5, -1.0, 2.0])
  grads = [np.array([0.1, -3.0, 1e-9]), np.array([-0.2, 1.0, 1e-9])]
  opt = optim.build("rmsprop", {"learning_rate": lr, "adam_b1": 0.9, "adam_b2": 0.999})
  theta = jnp.asarray(theta0, jnp.float32)
  state = opt.init(theta)
  v, expected = np.zeros(3), theta0.copy()
  for g in grads:
    updates, state = opt.update(jnp.asarray(g, jnp.float32), state, theta)
    theta = optax.apply_updates(theta, updates)
    v = alpha * v + (1 - alpha) * g**2
    expected = expected - lr * g / (np.sqrt(v) + eps)
    np.testing.assert_allclose(theta, expected, rtol=1e-6)
  # The tiny gradient: ε outside the root gives 1e-9/(1e-10 + 1e-8) ≈ 0.1, not 1e-9/√(v + ε).
  assert abs(float(theta[2]) - 2.0) > 1e-3


def test_rmsprop_state_does_not_depend_on_the_values_and_takes_traced_rates():
  schedule = optim.Schedule("multistep", boundaries=(2,), factor=0.5)
  params = {"w": jnp.ones((2, 3))}
  a = optim.build("rmsprop", {"learning_rate": 1e-3}, schedule).init(params)
  b = optim.build("rmsprop", {"learning_rate": 7.0}, schedule).init(params)
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)

  @jax.jit
  def step(lr, state):
    return optim.build("rmsprop", {"learning_rate": lr}, schedule).update(params, state, params)

  updates, _ = step(jnp.float32(1e-3), a)
  np.testing.assert_allclose(updates["w"], -1e-3 / (np.sqrt(0.01) + 1e-8), rtol=1e-6)


def test_vamp_pythae_config_is_the_scripts():
  config = load_config("vamp_pythae")
  assert (config.optimizer, config.learning_rate, config.batch_size) == ("rmsprop", 1e-4, 100)
  assert config.num_steps == 2_000 * STEPS_PER_EPOCH == 1_000_000
  assert config.lr_boundaries == tuple(m * STEPS_PER_EPOCH for m in (200, 350, 500, 750, 1000))
  assert config.lr_decay_factor == 10 ** (-1 / 5) and config.lr_schedule == "multistep"
  assert (config.latent_dim, config.num_pseudo_inputs) == (40, 500)
  assert config.encoder_hidden == config.decoder_hidden == (300, 300)
  assert (config.dataset, config.binarize, config.objective) == ("binarized_mnist", "none",
                                                                 "elbo")


def test_optimizer_is_checked_in_one_line():
  with pytest.raises(UserError, match="optimizer.*sgd") as error:
    run_config.validate(_tiny(optimizer="sgd"))
  assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- standard normal


def test_standard_normal_vaes_keep_the_analytic_kl(digits):
  config = make_tiny_zoo_config("vae")
  family = build_family(config, IMAGE_SHAPE)
  assert not family.learned_prior and family.noise_dim == config.latent_dim
  params = family.init_state(jax.random.PRNGKey(0), 16, IMAGE_SHAPE).params
  key = jax.random.PRNGKey(1)
  loss, parts = family.loss(params, digits, None, key, beta=0.5)
  mean, logvar = family.model.apply(params, digits, None, method="encode")
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, (1, *mean.shape))[0]
  logits = family.model.apply(params, z, None, method="decode")
  expected = vae_losses.vae_loss(logits, digits, mean, logvar, 0.5, "bernoulli", 0.1)
  assert float(loss) == float(expected[0]) and float(parts["kl"]) == float(expected[1]["kl"])
  zeros = jnp.zeros_like(mean)
  zs = z[None]
  recon = jnp.ones((1, len(digits)))
  np.testing.assert_array_equal(
      vae_losses.log_importance_weights(recon, zs, mean, logvar),
      -recon + vae_losses.log_normal(zs, zeros, zeros) - vae_losses.log_normal(zs, mean, logvar))


def test_new_keys_at_their_defaults_leave_fingerprints_alone():
  config = load_config("vae")
  assert (config.optimizer, config.adam_eps, config.kl_warmup_steps,
          config.kl_warmup_every) == ("adam", 1e-8, 0, 1)
  settings = json.loads(config.to_json())
  without = {k: v for k, v in settings.items()
             if k not in ("optimizer", "adam_eps", "kl_warmup_steps", "kl_warmup_every")}
  assert run_config.fingerprint(settings) == run_config.fingerprint(without)
  assert run_config.fingerprint({**settings, "optimizer": "rmsprop"}) != run_config.fingerprint(
      without)


# ----------------------------------------------------------------------------- end to end


TINY_FLAGS = ["--config.dataset=mnist_embedded", "--config.binarize=static",
              "--config.select_model=last",  # The embedded set has no validation split.
              "--config.num_steps=20", "--config.batch_size=16", "--config.steps_per_dispatch=10",
              "--config.log_every=10", "--config.sample_every=20", "--config.checkpoint_every=20",
              "--config.num_grid_samples=16", "--config.num_recon=4",
              "--config.eval_classifier_epochs=0.02"]


def train_and_score(model: str, flags: list[str], workdir: str, cache_dir: str) -> dict:
  """`python train.py --model MODEL` at tiny sizes, then `python -m genimg_jax.evaluate`:
  (the last metrics line, the evaluate record)."""
  result = run_python(["train.py", "--model", model, "--workdir", workdir, *TINY_FLAGS, *flags],
                      timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    lines = [json.loads(line) for line in f if line.strip()]
  assert [line["step"] for line in lines] == [10, 20, 20]
  assert all(math.isfinite(v) for line in lines for v in line.values()), lines
  result = run_python(["-m", "genimg_jax.evaluate", "--workdir", workdir, "--num", "40",
                       "--iwae_k", "20", "--no_interpolations", "--cache_dir", cache_dir],
                      timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  record = json.loads(result.stdout.strip().splitlines()[-1])
  assert math.isfinite(record["iwae_nll"]) and record["iwae_k"] == 20
  assert record["iwae_nll"] <= record["test_neg_elbo"] + 5.0  # The bound, up to ε's noise.
  return lines, record


@pytest.mark.slow
def test_vamp_pythae_trains_and_reports_an_nll(tmp_path):
  lines, record = train_and_score(
      "vamp_pythae", ["--config.encoder_hidden=16,16", "--config.decoder_hidden=16,16",
                      "--config.latent_dim=4", "--config.num_pseudo_inputs=8",
                      "--config.kl_warmup_steps=20", "--config.kl_warmup_every=10"],
      str(tmp_path / "run"), str(tmp_path / "cache"))
  # Updates t = 0…9 (logged at step 10) weigh the KL by 10/20, t = 10…19 by 20/20.
  assert [line["kl_weight"] for line in lines[:2]] == pytest.approx([0.5, 1.0])
  assert 100 < record["test_neg_elbo"] < 800, record
