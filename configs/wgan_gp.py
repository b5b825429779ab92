"""WGAN-GP (`--model wgan_gp`): the standard CNN trained on the Wasserstein loss with gradient
penalty λ = 10 on x̂ = αx + (1 − α)G(z); Mimicry's settings: Adam(2e-4, 0, 0.9), n_critic 5,
learning rate decayed linearly to 0."""

from configs import dcgan32


def get_config():
  config = dcgan32.get_config()
  config.loss = "wgan_gp"
  config.gp_weight = 10.0
  config.n_critic = 5
  config.adam_b1 = 0.0
  config.adam_b2 = 0.9
  config.lr_schedule = "linear"
  return config
