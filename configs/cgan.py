"""Class-conditional DCGAN (`--model cgan`): G takes [z, embed(y)], D is a projection
discriminator l(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018). Sample grids show
one row per class."""

from configs import dcgan


def get_config():
  config = dcgan.get_config()
  config.conditional = True
  return config
