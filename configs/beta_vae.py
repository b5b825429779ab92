"""β-VAE (`--model beta_vae`, Higgins et al. 2017): the conv VAE with the KL weighted by β = 4,
trading reconstruction for a latent code closer to the prior."""

from configs import conv_vae


def get_config():
  config = conv_vae.get_config()
  config.beta = 4.0
  return config
