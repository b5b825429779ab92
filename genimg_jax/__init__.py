"""genimg_jax: GANs and VAEs in JAX/Flax, from the seed MLPs upward."""

__version__ = "0.1.0"
