"""Importance-weighted autoencoder (`--model iwae`, Burda et al. 2015): the seed's MLP VAE
trained on the k-sample bound L_k = log (1/k) Σ_i p(x, z_i)/q(z_i|x) with k = 5."""

from configs import vae


def get_config():
  config = vae.get_config()
  config.objective = "iwae"
  config.num_importance_samples = 5
  return config
