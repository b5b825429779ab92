"""Default GAN (`--model gan`): the seed's MLP sizes, losses and Adam, with three fixes:

LeakyReLU(0.2) instead of ReLU, tanh output on data in [−1, 1], dropout 0.3 after each hidden
layer of D. The exact seed (`gan_seed`) mode-collapses; these changes are what stops it.
"""

from configs import _gan


def get_config():
  config = _gan.get_config()
  config.architecture = "mlp"
  config.num_steps = 10_000
  config.generator_hidden = (256, 512, 1024)  # Generator Dense widths.
  config.discriminator_hidden = (1024, 512, 256)  # Discriminator Dense widths.
  config.activation = "leaky_relu"  # Hidden activation of G and D: "relu" or "leaky_relu".
  config.leaky_relu_slope = 0.2  # Negative slope when activation is "leaky_relu".
  config.discriminator_dropout = 0.3  # Dropout after each hidden layer of D (0 disables).
  return config
