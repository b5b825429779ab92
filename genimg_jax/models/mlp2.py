"""Two-hidden-layer MLP VAEs (the IWAE paper's 784 → 200 → 200 → 50 networks, `iwae_burda`):
the layers of `mlp.py` (Encoder, Decoder, its check_config); a file of its own so that its
narrow test widths (SMALL) keep both hidden layers on each side."""

from genimg_jax.models.mlp import check_config, vae_network

__all__ = ["SMALL", "check_config", "vae_network"]

# Narrow widths for tests and smoke runs: same layers, fewer channels.
SMALL = {"encoder_hidden": (16, 16), "decoder_hidden": (16, 16), "latent_dim": 4}
