"""Keys every GAN shares (the GAN family's loss, schedule, optimiser, EMA). Not a model itself
(files starting with "_" are bases): gan.py, dcgan.py and dcgan32.py extend it."""

from configs import common


def get_config():
  config = common.get_config()
  config.family = "gan"
  config.latent_dim = 100  # z ∈ R^latent_dim.
  # z's prior in training, sample grids, generate and evaluate: "normal" (N(0, I)) or "uniform"
  # (U(−1, 1) per coordinate, compare_gan's); conditional models: the label is drawn as before.
  config.latent_distribution = "normal"
  config.output_activation = "tanh"  # G output: "tanh" (data in [−1, 1]) or "sigmoid" ([0, 1]).
  config.loss = "non_saturating"  # non_saturating, minimax, hinge, least_squares or wgan_gp.
  config.gp_weight = 0.0  # λ of the WGAN-GP gradient penalty on x̂ = αx + (1 − α)G(z); 0: none.
  config.n_critic = 1  # D updates per G update, each on its own real batch.
  # D sees real and fake batches in two passes (each its own BatchNorm batch statistics, as in
  # the G update); False: one pass over both, concatenated (the same when D has no BatchNorm).
  config.discriminator_separate_batches = False
  config.ema_decay = 0.0  # EMA of G's parameters for samples (e.g. 0.999); 0 turns it off.
  config.learning_rate = 2e-4  # Adam step size, both networks.
  config.lr_schedule = "constant"  # "constant" or "linear" (decayed to 0 at num_steps).
  config.adam_b1 = 0.5  # Adam β1, both networks.
  config.adam_b2 = 0.999  # Adam β2, both networks.
  return config
