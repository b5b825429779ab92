"""NS GAN as Lucic et al. 2018 train it on MNIST (`--model lucic_ns_gan`): InfoGAN networks
with BN in D, non-saturating loss, compare_gan's defaults Adam(5e-5, β1 = 0, β2 = 0.999),
n_critic 1, batch 64, 15,625 steps (20 epochs of 50,000)."""

from configs import _lucic


def get_config():
  config = _lucic.get_config()
  config.loss = "non_saturating"
  config.learning_rate = 5e-5
  config.adam_b1 = 0.0
  config.discriminator_batch_norm = True
  return config
