"""The IWAE of Burda et al. 2015 (arXiv:1509.00519), one stochastic layer, MNIST (`--model
iwae_burda`): 784 → 200 tanh → 200 tanh → (μ, log σ²) ∈ R^50, 50 → 200 tanh → 200 tanh → 784
Bernoulli logits, trained on the k = 5 bound (`--config.num_importance_samples=50` for k = 50)
with a fresh binarisation of every batch, batch 20, Adam(β1 0.9, β2 0.999, ε 1e-4) with the paper's
schedule: 3^i epochs at 10^−3 · 10^(−i/7) for i = 0 … 7 (3,280 epochs of 60,000 images). The
results rows train it on `--config.dataset=mnist` (the embedded digits by default)."""

from configs import vae

STEPS_PER_EPOCH = 60_000 // 20
# Passes i = 0 … 7 last 3^i epochs; the rate drops by 10^(−1/7) at the end of each but the last.
BOUNDARIES = tuple(sum(3 ** j for j in range(i + 1)) * STEPS_PER_EPOCH for i in range(7))


def get_config():
  config = vae.get_config()
  config.binarize = "dynamic"
  config.objective = "iwae"
  config.num_importance_samples = 5
  config.batch_size = 20
  config.latent_dim = 50
  config.architecture = "mlp2"  # mlp.py's layers, with two hidden layers each side.
  config.encoder_hidden = (200, 200)
  config.decoder_hidden = (200, 200)
  config.activation = "tanh"
  config.learning_rate = 1e-3
  config.lr_schedule = "multistep"  # "constant" or "multistep" (step decay at lr_boundaries).
  config.lr_boundaries = BOUNDARIES  # Steps at which the rate is multiplied by lr_decay_factor.
  config.lr_decay_factor = 10 ** (-1 / 7)  # The paper's per-pass decay of the learning rate.
  config.num_steps = sum(3 ** i for i in range(8)) * STEPS_PER_EPOCH  # 3,280 epochs.
  config.adam_eps = 1e-4  # The paper's Adam ε.
  config.log_every = 3_000
  config.sample_every = 300_000
  config.checkpoint_every = 30_000
  config.steps_per_dispatch = 500
  return config
