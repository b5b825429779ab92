"""The optimiser parts: the EMA of parameters against its closed form, the linear schedule."""

import jax.numpy as jnp
import numpy as np

from genimg_jax.train import optim


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


def test_linear_schedule_decays_to_zero(tiny_gan_config):
  config = tiny_gan_config
  config.lr_schedule, config.num_steps = "linear", 100
  schedule = optim.learning_rate(config, updates_per_step=5)
  np.testing.assert_allclose(schedule(0), config.learning_rate)
  np.testing.assert_allclose(schedule(250), config.learning_rate / 2, rtol=1e-6)
  np.testing.assert_allclose(schedule(500), 0.0, atol=1e-12)
  config.lr_schedule = "constant"
  assert optim.learning_rate(config) == config.learning_rate
