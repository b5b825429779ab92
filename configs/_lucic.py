"""Keys of the Lucic et al. 2018 MNIST GANs (google/compare_gan's first release): its InfoGAN
networks, z ∈ R^64 ~ U(−1, 1), batch 64, 20 epochs of 50,000 images, sigmoid output on [0, 1]
data. A base, not a model: lucic_ns_gan.py, lucic_wgan_gp.py and lucic_lsgan.py set each GAN's
defaults (compare_gan's src/params.py)."""

from configs import _gan

EPOCH = 50_000  # compare_gan's MNIST epoch (its train split less 10,000 for validation).


def get_config():
  config = _gan.get_config()
  config.architecture = "infogan"
  config.latent_dim = 64
  config.latent_distribution = "uniform"  # compare_gan's z_generator: np.random.uniform(-1, 1).
  config.batch_size = 64
  config.output_activation = "sigmoid"
  config.num_steps = 20 * EPOCH // 64  # 15,625 D updates: 20 epochs (G steps = this / n_critic).
  config.generator_width = 64  # G's unit w: Dense 16w, 7·7·2w, ConvT w (1024, 6272, 64).
  config.discriminator_width = 64  # D's unit w: Conv w, Conv 2w, Dense 16w (64, 128, 1024).
  config.discriminator_batch_norm = True  # BN in D after conv 2 and the Dense 1024.
  config.discriminator_separate_batches = True  # compare_gan: D(x) and D(G(z)) are two passes.
  config.leaky_relu_slope = 0.2  # LeakyReLU slope of G and D (compare_gan's lrelu).
  config.batch_norm_momentum = 0.999  # BN running-average decay (tf.contrib batch_norm's).
  config.batch_norm_epsilon = 1e-3  # BN ε (tf.contrib batch_norm's).
  config.init_stddev = 0.02  # Kernels ~ N(0, 0.02²) (truncated at 2σ in the convs).
  return config
