"""The VAE of pythae's reproducibility script (`--model vae_pythae`; github
clementchadebec/benchmark_VAE, examples/scripts/reproducibility/vae.py), at its protocol:
784 → 400 ReLU → (μ, log σ²) ∈ R^40, 40 → 400 ReLU → 784 Bernoulli logits, PyTorch's default
initialisation, on Larochelle's fixed binarised MNIST (`binarized_mnist`: 50,000 train /
10,000 validation / 10,000 test; prepare it with `python -m genimg_jax.prepare binarized_mnist
--from DIR`); Adam(1e-4) at batch 100 for 500 epochs (250,000 steps), the rate multiplied by
10^(−1/5) at epochs 200 and 350 (PyTorch MultiStepLR, milestones 200, 350, 500, 750, 1000 —
those from 500 on fall at or after the end), stepped once per epoch as pythae's trainer does;
the validation −ELBO checked every epoch and the best model kept and scored (pythae's trainer
keeps a copy whenever the validation loss improves and saves it as `final_model`)."""

from configs import vae

STEPS_PER_EPOCH = 50_000 // 100  # pythae's epoch: 50,000 training images, batch 100.


def get_config():
  config = vae.get_config()
  config.dataset = "binarized_mnist"  # Pixels are already 0/1: no binarisation of our own.
  config.init = "torch"  # PyTorch's nn.Linear default (pythae keeps it).
  config.select_model = "best_validation"
  config.validation_every = STEPS_PER_EPOCH
  config.batch_size = 100
  config.num_steps = 500 * STEPS_PER_EPOCH
  config.latent_dim = 40
  config.encoder_hidden = (400,)
  config.decoder_hidden = (400,)
  config.learning_rate = 1e-4
  config.lr_schedule = "multistep"  # "constant" or "multistep" (MultiStepLR's step decay).
  config.lr_boundaries = tuple(m * STEPS_PER_EPOCH for m in (200, 350, 500, 750, 1000))  # Steps.
  config.lr_decay_factor = 10 ** (-1 / 5)  # Rate × this at each boundary (MultiStepLR's gamma).
  config.log_every = 2_500
  config.sample_every = 25_000
  config.checkpoint_every = 10_000
  config.steps_per_dispatch = 500
  return config
