"""The zoo's GAN losses and training parts against closed forms (issue 7, acceptance 1):
hinge / least-squares / Wasserstein values, the gradient penalty of linear critics, α per
example, spectral norm vs the SVD, the EMA's closed form, the projection head's formula."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax.losses import gan as gan_losses
from genimg_jax.models import conditional
from genimg_jax.train import optim

REAL = np.array([2.0, -1.0, 0.5], np.float32)  # l(x) of three real images.
FAKE = np.array([-3.0, 0.25], np.float32)  # l(G(z)) of two fakes (E_x and E_z are separate).


def test_hinge_closed_form():
  # E_x max(0, 1 − l): (0 + 2 + 0.5) / 3; E_z max(0, 1 + l): (0 + 1.25) / 2.
  expected_d = (0.0 + 2.0 + 0.5) / 3 + (0.0 + 1.25) / 2
  np.testing.assert_allclose(gan_losses.discriminator_loss_hinge(REAL, FAKE), expected_d,
                             rtol=1e-6)
  np.testing.assert_allclose(gan_losses.generator_loss_hinge(FAKE), -(-3.0 + 0.25) / 2,
                             rtol=1e-6)


def test_least_squares_closed_form():
  # ½E_x (l − 1)²: ½(1 + 4 + 0.25)/3; ½E_z l²: ½(9 + 0.0625)/2.
  expected_d = 0.5 * (1.0 + 4.0 + 0.25) / 3 + 0.5 * (9.0 + 0.0625) / 2
  np.testing.assert_allclose(gan_losses.discriminator_loss_least_squares(REAL, FAKE),
                             expected_d, rtol=1e-6)
  expected_g = 0.5 * ((-4.0) ** 2 + (-0.75) ** 2) / 2
  np.testing.assert_allclose(gan_losses.generator_loss_least_squares(FAKE), expected_g,
                             rtol=1e-6)


def test_wasserstein_closed_form():
  # E_z l − E_x l = (−2.75 / 2) − (1.5 / 3).
  np.testing.assert_allclose(gan_losses.discriminator_loss_wasserstein(REAL, FAKE),
                             -2.75 / 2 - 1.5 / 3, rtol=1e-6)
  np.testing.assert_allclose(gan_losses.generator_loss_wasserstein(FAKE), 2.75 / 2, rtol=1e-6)


@pytest.mark.parametrize("norm", [1.0, 0.3, 2.5])
def test_gradient_penalty_of_a_linear_critic(norm):
  """l(x) = ⟨w, x⟩ + b has ∇l = w everywhere: penalty = λ(‖w‖ − 1)², 0 for a unit-norm w."""
  w = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 1))
  w = w / jnp.linalg.norm(w) * norm
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3)) + 0.7
  x_hat = jax.random.uniform(jax.random.PRNGKey(1), (6, 4, 4, 1))
  penalty = gan_losses.gradient_penalty(critic, x_hat, weight=10.0)
  np.testing.assert_allclose(penalty, 10.0 * (norm - 1.0) ** 2, atol=1e-5)


def test_gradient_penalty_is_per_example():
  """A critic whose gradient norm differs per example: mean of each example's (‖∇‖ − 1)²."""
  critic = lambda x: jnp.sum(x**2, axis=(1, 2, 3))  # ∇ = 2x, ‖∇‖ = 2‖x‖.
  x_hat = jnp.stack([jnp.full((2, 2, 1), 0.25), jnp.full((2, 2, 1), 1.0)])  # ‖x‖ = 0.5, 2.
  expected = np.mean([(1.0 - 1.0) ** 2, (4.0 - 1.0) ** 2])
  np.testing.assert_allclose(gan_losses.gradient_penalty(critic, x_hat, 1.0), expected, rtol=1e-6)


def test_interpolation_draws_alpha_per_example():
  real, fake = jnp.ones((64, 3, 3, 2)), jnp.zeros((64, 3, 3, 2))
  x_hat = np.asarray(gan_losses.interpolate(real, fake, jax.random.PRNGKey(3)))
  alphas = x_hat[:, 0, 0, 0]  # x̂ = α·1 + (1 − α)·0 = α.
  np.testing.assert_array_equal(x_hat, np.broadcast_to(alphas[:, None, None, None], x_hat.shape))
  assert len(np.unique(alphas)) == 64  # One α per example, not one per batch.
  assert 0.0 <= alphas.min() and alphas.max() <= 1.0
  assert 0.3 < alphas.mean() < 0.7  # U(0, 1).


def test_spectral_norm_divides_by_the_top_singular_value():
  """After enough power iterations, flax's SpectralNorm (as the D layers use it) gives W / σ₁."""
  layer = nn.Dense(5)
  apply = conditional.maybe_spectral_norm

  class Wrapped(nn.Module):
    @nn.compact
    def __call__(self, x, train):
      return apply(layer.clone(name="dense"), True, train)(x)

  model = Wrapped()
  x = jnp.eye(7)  # Rows of the identity: the output is the normalised kernel (plus bias 0).
  variables = model.init(jax.random.PRNGKey(0), x, train=False)
  (kernel,) = [w for w in jax.tree_util.tree_leaves(variables["params"]) if w.ndim == 2]
  for _ in range(60):  # Each train-mode call runs one power iteration and keeps u.
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    variables = {**variables, **updates}
  out = model.apply(variables, x, train=False)
  sigma = np.linalg.svd(np.asarray(kernel), compute_uv=False)[0]
  np.testing.assert_allclose(out, kernel / sigma, rtol=1e-4, atol=1e-6)
  top = np.linalg.svd(np.asarray(out), compute_uv=False)[0]
  np.testing.assert_allclose(top, 1.0, rtol=1e-4)


def test_ema_closed_form_after_k_steps():
  """θ_ema,k = d^k θ_ema,0 + (1 − d) Σ_{i=1..k} d^{k−i} θ_i for any parameter sequence θ_i."""
  decay, k = 0.9, 7
  thetas = [{"w": jnp.full((3,), float(i) ** 1.5)} for i in range(1, k + 1)]
  ema = {"w": jnp.full((3,), -2.0)}
  for theta in thetas:
    ema = optim.ema_update(ema, theta, decay)
  expected = decay**k * -2.0 + (1 - decay) * sum(decay ** (k - i) * float(i) ** 1.5
                                                 for i in range(1, k + 1))
  np.testing.assert_allclose(ema["w"], np.full(3, expected), rtol=1e-6)


def test_projection_head_equals_its_formula_and_depends_on_the_label():
  head = conditional.ProjectionOutput(num_classes=4)
  features = jax.random.normal(jax.random.PRNGKey(0), (5, 6))
  labels = jnp.array([0, 1, 2, 3, 1])
  variables = head.init(jax.random.PRNGKey(1), features, labels, train=False)
  logits = head.apply(variables, features, labels, train=False)
  p = variables["params"]
  psi = features @ p["psi"]["kernel"][:, 0] + p["psi"]["bias"][0]
  projection = jnp.sum(p["class_embedding"]["embedding"][labels] * features, axis=-1)
  np.testing.assert_allclose(logits, psi + projection, rtol=1e-5, atol=1e-6)
  other = head.apply(variables, features, (labels + 1) % 4, train=False)
  assert np.all(np.abs(np.asarray(other) - np.asarray(logits)) > 1e-6)
  unconditional = conditional.ProjectionOutput(num_classes=0)
  v0 = unconditional.init(jax.random.PRNGKey(1), features, None, train=False)
  np.testing.assert_allclose(unconditional.apply(v0, features, None, train=False),
                             features @ v0["params"]["psi"]["kernel"][:, 0]
                             + v0["params"]["psi"]["bias"][0], rtol=1e-5, atol=1e-6)


def test_linear_schedule_decays_to_zero(tiny_gan_config):
  config = tiny_gan_config
  config.lr_schedule, config.num_steps = "linear", 100
  schedule = optim.learning_rate(config, updates_per_step=5)
  np.testing.assert_allclose(schedule(0), config.learning_rate)
  np.testing.assert_allclose(schedule(250), config.learning_rate / 2, rtol=1e-6)
  np.testing.assert_allclose(schedule(500), 0.0, atol=1e-12)
  config.lr_schedule = "constant"
  assert optim.learning_rate(config) == config.learning_rate
