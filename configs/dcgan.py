"""DCGAN on MNIST-sized images (`--model dcgan`, docs/models.md): conv-transpose G with
BatchNorm, strided-conv D with dropout, tanh on [−1, 1] data, Adam(2e-4, 0.5, 0.999), batch 64,
non-saturating loss."""

from configs import _gan


def get_config():
  config = _gan.get_config()
  config.architecture = "dcgan"
  config.num_steps = 1_800  # 7 min 12 s on 2 idle CPU cores (~4.2 steps/s at batch 64).
  config.generator_base_channels = 256  # Channels at G's H/4 start (256 → 128 → 64 → C).
  config.discriminator_channels = (64, 128)  # D's two 5×5 stride-2 convs.
  config.discriminator_dropout = 0.3  # Dropout after each D conv.
  config.leaky_relu_slope = 0.2  # LeakyReLU slope in G and D.
  config.batch_norm_momentum = 0.9  # G's BatchNorm running-average momentum (PyTorch's 0.1).
  config.label_embed_dim = 50  # Conditional G: size of the label embedding joined to z.
  return config
