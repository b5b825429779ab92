"""LSGAN as Lucic et al. 2018 train it on MNIST (`--model lucic_lsgan`): InfoGAN networks with
BN in D, least-squares loss, compare_gan's defaults Adam(2e-4, β1 = 0.5, β2 = 0.999), n_critic
1, batch 64, 15,625 steps (20 epochs of 50,000)."""

from configs import _lucic


def get_config():
  config = _lucic.get_config()
  config.loss = "least_squares"
  config.learning_rate = 2e-4
  config.adam_b1 = 0.5
  config.discriminator_batch_norm = True
  return config
