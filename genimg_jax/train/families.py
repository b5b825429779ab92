"""Model families by name: `config.family` → the class that builds networks, state and step."""

from genimg_jax.train.gan_step import GAN
from genimg_jax.train.vae_step import VAE

FAMILIES = {"gan": GAN, "vae": VAE}


def build_family(config, image_shape):
  """The GAN or VAE object for this config and image shape (H, W, C)."""
  return FAMILIES[config.family].from_config(config, image_shape)
