"""The VAE of pythae's reproducibility script (`--model vae_pythae`; github
clementchadebec/benchmark_VAE, examples/scripts/reproducibility/vae.py): 784 → 400 ReLU →
(μ, log σ²) ∈ R^40, 40 → 400 ReLU → 784 Bernoulli logits, on statically binarised digits;
Adam(1e-4) at batch 100 for 500 epochs of 50,000 images (250,000 steps), the rate multiplied by
10^(−1/5) at epochs 200 and 350 (PyTorch MultiStepLR, milestones 200, 350, 500, 750, 1000 —
those from 500 on fall at or after the end). The results row trains it on
`--config.dataset=mnist` (the embedded digits by default)."""

from configs import vae

STEPS_PER_EPOCH = 50_000 // 100  # pythae's epoch: 50,000 training images, batch 100.


def get_config():
  config = vae.get_config()
  config.binarize = "static"
  config.batch_size = 100
  config.num_steps = 500 * STEPS_PER_EPOCH
  config.latent_dim = 40
  config.encoder_hidden = (400,)
  config.decoder_hidden = (400,)
  config.learning_rate = 1e-4
  config.lr_schedule = "multistep"  # "constant" or "multistep" (MultiStepLR's step decay).
  config.lr_boundaries = tuple(m * STEPS_PER_EPOCH for m in (200, 350, 500, 750, 1000))  # Steps.
  config.lr_decay_factor = 10 ** (-1 / 5)  # Rate × this at each boundary (MultiStepLR's gamma).
  config.log_every = 1_000
  config.sample_every = 25_000
  config.checkpoint_every = 10_000
  config.steps_per_dispatch = 500
  return config
