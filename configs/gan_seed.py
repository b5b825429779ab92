"""The seed tutorial's GAN exactly: ReLU, sigmoid output on [0, 1] data, no dropout.

Kept to show its failure (docs/models.md): it mode-collapses to one or two digit classes.
"""

from configs import gan


def get_config():
  config = gan.get_config()
  config.activation = "relu"
  config.output_activation = "sigmoid"
  config.discriminator_dropout = 0.0
  return config
