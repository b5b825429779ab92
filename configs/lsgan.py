"""LSGAN (`--model lsgan`): the standard CNN with the least-squares loss, DCGAN-paper optimiser
Adam(2e-4, 0.5, 0.999), n_critic 1."""

from configs import dcgan32


def get_config():
  config = dcgan32.get_config()
  config.loss = "least_squares"
  return config
