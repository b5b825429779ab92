"""SNGAN (`--model sngan`): the standard CNN with spectral norm in every D layer and the hinge loss;
Mimicry's settings: Adam(2e-4, β1 = 0, β2 = 0.9), n_critic 5, learning rate decayed linearly to 0."""

from configs import dcgan32


def get_config():
  config = dcgan32.get_config()
  config.spectral_norm = True
  config.loss = "hinge"
  config.n_critic = 5
  config.adam_b1 = 0.0
  config.adam_b2 = 0.9
  config.lr_schedule = "linear"
  return config
