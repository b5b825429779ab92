"""The SNGAN paper's standard CNN (`--model dcgan32`) with BatchNorm G and the non-saturating loss,
trained as in the DCGAN paper: Adam(2e-4, 0.5, 0.999), n_critic 1, batch 64. Base of sngan,
wgan_gp and lsgan. Takes 32×32×C or 64×64×C; the embedded MNIST is resized to 32×32."""

from configs import _gan


def get_config():
  config = _gan.get_config()
  config.architecture = "standard_cnn"
  config.image_size = 32
  config.num_steps = 5_000
  config.latent_dim = 128
  config.generator_width = 64  # G's channel unit w (4·4·8w start, then 4w, 2w, w).
  config.discriminator_width = 64  # D's channel unit w (w, w, 2w, 2w, 4w, 4w, 8w).
  config.spectral_norm = False  # Spectral normalisation of every D layer (SNGAN).
  config.leaky_relu_slope = 0.1  # D's LeakyReLU slope.
  config.batch_norm_momentum = 0.9  # G's BatchNorm running-average momentum (PyTorch's 0.1).
  config.label_embed_dim = 128  # Conditional G: size of the label embedding joined to z.
  return config
