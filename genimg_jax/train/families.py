"""Model families by name: `config.family` → the class that builds networks, state and step."""

from genimg_jax.errors import UserError
from genimg_jax.train.gan_step import GAN
from genimg_jax.train.vae_step import VAE

FAMILIES = {"gan": GAN, "vae": VAE}


def build_family(config, image_shape, num_classes: int = 0):
  """The GAN or VAE object for this config, image shape (H, W, C) and the data's class count.

  `num_classes` is the data set's (0: unlabelled); a conditional config needs it > 0.
  """
  if config.get("conditional", False) and num_classes <= 0:
    raise UserError(f"model {config.model!r} is class-conditional but data set "
                    f"{config.dataset!r} has no labels: use a labelled data set (e.g. "
                    f"mnist_embedded, mnist, cifar10) or an unconditional model")
  return FAMILIES[config.family].from_config(config, image_shape, num_classes)
