"""Convolutional VAE (`--model conv_vae`): Conv 32 → Conv 64 (4×4, stride 2) → Dense 256 →
(μ, log σ²) ∈ R^32; mirrored Dense / conv-transpose decoder (genimg_jax/models/conv_vae.py).
Bernoulli likelihood; `--config.likelihood=gaussian` for the Gaussian one."""

from configs import vae


def get_config():
  config = vae.get_config()
  config.architecture = "conv_vae"
  config.num_steps = 1_000  # ~19 ms per step of 64 on 2 CPU cores (the MLP vae: ~1.5 ms).
  config.conv_channels = (32, 64)  # Stride-2 4×4 conv widths (H, W must divide by 2^len).
  config.encoder_hidden = (256,)  # Dense widths after the convs, before the (μ, log σ²) heads.
  config.decoder_hidden = (256,)  # Dense widths after z, before the first conv-transpose.
  return config
