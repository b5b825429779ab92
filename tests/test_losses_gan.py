"""The GAN losses against closed forms and hand computations in plain numpy: the logistic
losses (zero, finite and huge logits), hinge / least-squares / Wasserstein values, the gradient
penalty of linear critics, α per example, the registry's names, gradients in float64."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from genimg_jax.losses import gan as gan_losses

LN2 = math.log(2.0)
REAL = np.array([2.0, -1.0, 0.5], np.float32)  # l(x) of three real images.
FAKE = np.array([-3.0, 0.25], np.float32)  # l(G(z)) of two fakes (E_x and E_z are separate).


def _np_sigmoid(l):
  return 1.0 / (1.0 + np.exp(-np.asarray(l, np.float64)))


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


def test_zero_logits_closed_forms():
  zeros = jnp.zeros((5,), jnp.float32)
  # D(x) = D(G(z)) = 1/2: L_D = −log ½ − log ½ = 2 ln 2.
  np.testing.assert_allclose(gan_losses.discriminator_loss(zeros, zeros), 2 * LN2, rtol=1e-6)
  # Non-saturating L_G = −log ½ = ln 2; minimax L_G = log(1 − ½) = −ln 2.
  np.testing.assert_allclose(gan_losses.generator_loss_non_saturating(zeros), LN2, rtol=1e-6)
  np.testing.assert_allclose(gan_losses.generator_loss_minimax(zeros), -LN2, rtol=1e-6)


def test_gan_loss_registry_names():
  losses = gan_losses.GAN_LOSSES
  assert losses["non_saturating"].generator is gan_losses.generator_loss_non_saturating
  assert losses["minimax"].generator is gan_losses.generator_loss_minimax
  assert losses["minimax"].discriminator is gan_losses.discriminator_loss
  assert losses["hinge"].discriminator is gan_losses.discriminator_loss_hinge
  assert set(losses) == {"non_saturating", "minimax", "hinge", "least_squares", "wgan_gp"}


def test_hand_computed_gan_losses():
  # Different batch sizes for real and fake: E_x and E_z are separate means.
  real = np.array([2.0, -1.0, 0.5], np.float32)
  fake = np.array([-3.0, 0.7], np.float32)
  d_real = 1.0 / (1.0 + np.exp(-real.astype(np.float64)))  # D(x) = σ(l)
  d_fake = 1.0 / (1.0 + np.exp(-fake.astype(np.float64)))
  expected_d = -np.mean(np.log(d_real)) - np.mean(np.log(1.0 - d_fake))
  expected_ns = -np.mean(np.log(d_fake))
  expected_mm = np.mean(np.log(1.0 - d_fake))
  np.testing.assert_allclose(gan_losses.discriminator_loss(real, fake), expected_d, rtol=1e-5)
  np.testing.assert_allclose(gan_losses.generator_loss_non_saturating(fake), expected_ns, rtol=1e-5)
  np.testing.assert_allclose(gan_losses.generator_loss_minimax(fake), expected_mm, rtol=1e-5)
  # The same numbers written out (computed once by hand from the formulas above).
  assert expected_d == pytest.approx(1.2139755944767, rel=1e-6)  # float32 inputs
  assert expected_ns == pytest.approx(1.7258867002296, rel=1e-6)  # float32 inputs
  assert expected_mm == pytest.approx(-0.5758867002296, rel=1e-6)  # float32 inputs


def test_huge_logits_are_finite_and_correct():
  big = jnp.full((4,), 100.0, jnp.float32)
  # A confident, correct D: L_D = −log σ(100) − log σ(100) ≈ 2·e^-100 ≈ 0.
  good = gan_losses.discriminator_loss(big, -big)
  assert np.isfinite(good) and abs(float(good)) < 1e-6
  # A confident, wrong D: L_D = −log σ(−100) − log σ(−100) = 100 + 100 (+ ~e^-100).
  bad = gan_losses.discriminator_loss(-big, big)
  assert np.isfinite(bad)
  np.testing.assert_allclose(bad, 200.0, rtol=1e-6)
  # Non-saturating at l = −100: −log σ(−100) = 100; minimax at l = +100: log σ(−100) = −100.
  np.testing.assert_allclose(gan_losses.generator_loss_non_saturating(-big), 100.0,
                             rtol=1e-6)
  np.testing.assert_allclose(gan_losses.generator_loss_minimax(big), -100.0, rtol=1e-6)
  # Gradients stay finite and have the right size: d/dl (−log σ(−l)) = σ(l) → 1 at l = 100.
  grad = jax.grad(lambda f: gan_losses.discriminator_loss(-big, f))(big)
  assert np.all(np.isfinite(grad))
  np.testing.assert_allclose(grad, np.full(4, 1.0 / 4), rtol=1e-6)


def _x64_inputs(seed, *shapes):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=s), jnp.float64) for s in shapes]


@pytest.mark.parametrize("order", [1, 2])
def test_gan_loss_gradients(x64, order):
  real, fake = _x64_inputs(4, (5,), (6,))
  assert real.dtype == jnp.float64
  modes = ("fwd", "rev")
  check_grads(jax.jit(gan_losses.discriminator_loss), (real, fake), order=order, modes=modes)
  check_grads(jax.jit(gan_losses.generator_loss_non_saturating), (fake,), order=order,
              modes=modes)
  check_grads(jax.jit(gan_losses.generator_loss_minimax), (fake,), order=order, modes=modes)
