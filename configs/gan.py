"""Default GAN (`--model gan`): the seed's MLP sizes, losses and Adam, with three fixes (SPEC §2).

LeakyReLU(0.2) instead of ReLU, tanh output on data in [−1, 1], dropout 0.3 after each hidden
layer of D. The exact seed (`gan_seed`) mode-collapses; these changes are what stops it.
"""

from configs import common


def get_config():
  config = common.get_config()
  config.family = "gan"
  config.num_steps = 10_000
  config.latent_dim = 100  # z ∈ R^latent_dim, z ~ N(0, I).
  config.generator_hidden = (256, 512, 1024)  # Generator Dense widths.
  config.discriminator_hidden = (1024, 512, 256)  # Discriminator Dense widths.
  config.activation = "leaky_relu"  # Hidden activation of G and D: "relu" or "leaky_relu".
  config.leaky_relu_slope = 0.2  # Negative slope when activation is "leaky_relu".
  config.output_activation = "tanh"  # G output: "tanh" (data in [−1, 1]) or "sigmoid" ([0, 1]).
  config.discriminator_dropout = 0.3  # Dropout after each hidden layer of D (0 disables).
  config.generator_loss = "non_saturating"  # "non_saturating" or "minimax" (losses/gan.py).
  config.learning_rate = 2e-4  # Adam step size, both networks.
  config.adam_b1 = 0.5  # Adam β1, both networks.
  config.adam_b2 = 0.999  # Adam β2, both networks.
  return config
