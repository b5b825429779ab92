"""Class-conditional VAE (`--model cvae`): the seed's MLP VAE with the one-hot label
concatenated to the encoder input and to z (docs/models.md). Needs a labelled data set."""

from configs import vae


def get_config():
  config = vae.get_config()
  config.conditional = True
  return config
