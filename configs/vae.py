"""The seed's VAE (`--model vae`): 784 → 128 ReLU → (μ, log σ²) ∈ R^32 × R^32 → 128 ReLU → 784.

The base of every VAE config (cvae, iwae, conv_vae, beta_vae): they override a few keys."""

from configs import common


def get_config():
  config = common.get_config()
  config.family = "vae"
  config.num_steps = 10_000
  config.latent_dim = 32  # z ∈ R^latent_dim; prior N(0, I) unless the network has its own.
  config.encoder_hidden = (128,)  # Encoder Dense widths before the (μ, log σ²) heads.
  config.decoder_hidden = (128,)  # Decoder Dense widths before the pixel logits.
  config.activation = "relu"  # Hidden activation: "relu" or "leaky_relu".
  config.leaky_relu_slope = 0.2  # Negative slope when activation is "leaky_relu".
  config.likelihood = "bernoulli"  # p(x|z): "bernoulli" (BCE from logits) or "gaussian".
  config.gaussian_sigma = 0.1  # σ of the Gaussian likelihood (pixels in [0, 1]).
  config.beta = 1.0  # Weight of the KL term (β-VAE); 1 ⇒ the loss is the negative ELBO.
  config.kl_warmup_steps = 0  # > 0: KL weight β·min(E·(⌊t/E⌋ + 1)/this, 1) at update t (elbo).
  config.kl_warmup_every = 1  # E: updates the warm-up holds each weight (an epoch's: per epoch).
  config.objective = "elbo"  # "elbo" (one z per image, analytic or Monte-Carlo KL) or "iwae".
  config.num_importance_samples = 1  # k: z samples per image of the "iwae" objective.
  config.optimizer = "adam"  # "adam" or "rmsprop" (PyTorch's RMSprop defaults: α 0.99, ε 1e-8).
  config.learning_rate = 1e-3  # Step size.
  config.adam_b1 = 0.9  # Adam β1.
  config.adam_b2 = 0.999  # Adam β2.
  config.adam_eps = 1e-8  # Adam ε, added to √v̂ (optax's and PyTorch's default).
  config.num_recon = 32  # Test images reconstructed in each reconstruction grid.
  config.eval_batch_size = 1_000  # Test images per compiled evaluation call.
  return config
