"""WGAN-GP as Lucic et al. 2018 train it on MNIST (`--model lucic_wgan_gp`): InfoGAN networks
without BN in D, Wasserstein loss + gradient penalty λ = 10, compare_gan's defaults
Adam(1e-4, β1 = 0.5, β2 = 0.999), n_critic 5, batch 64; 20 epochs of 50,000 = 15,625 D updates
= 3,125 G steps (compare_gan counts D updates)."""

from configs import _lucic


def get_config():
  config = _lucic.get_config()
  config.loss = "wgan_gp"
  config.gp_weight = 10.0
  config.n_critic = 5
  config.learning_rate = 1e-4
  config.adam_b1 = 0.5
  config.discriminator_batch_norm = False
  config.num_steps = 20 * _lucic.EPOCH // 64 // 5  # 3,125 G steps of 5 D updates each.
  return config
