"""The VampPrior VAE of pythae's reproducibility script (`--model vamp_pythae`; github
clementchadebec/benchmark_VAE, examples/scripts/reproducibility/vamp.py; reported NLL 85.79 with
5,000 importance samples): the gated MLPs of `models/vamp.py` (GatedDense 300, 300; R^40;
log σ² clipped to [−6, 2]) with K = 500 pseudo-inputs, Bernoulli logits, on Larochelle's fixed
binarisation of MNIST (50,000 training images); RMSprop(1e-4) at batch 100 for 2,000 epochs
(1,000,000 steps), the rate × 10^(−1/5) after epochs 200, 350, 500, 750 and 1,000 (MultiStepLR
stepped once per epoch), the KL weighted by min(epoch / 100, 1), epochs counted from 1.
Scored as the script does: `python -m genimg_jax.evaluate --iwae_k 5000`, 5 rounds.

As pythae's trainer, the validation −ELBO is checked every epoch and the best model is kept
and scored (select_model, inherited from vae_pythae).

Differences that remain:
- Randomness: seed 0 and JAX's generators (pythae: torch.manual_seed(123)), so other draws of
  the initial weights, epoch orders and ε.
- pythae scores σ(logits) with `F.binary_cross_entropy`, whose logs are clamped at −100: a
  pixel whose float32 σ rounds to exactly 0 or 1 (|logit| ≳ 17) costs at most 100 nats there
  and passes no gradient; here −log σ(±l) is exact (docs/models.md).
"""

from configs import vae_pythae

STEPS_PER_EPOCH = vae_pythae.STEPS_PER_EPOCH  # 50,000 training images, batch 100.


def get_config():
  config = vae_pythae.get_config()  # Batch 100, R^40, rate 1e-4 and its MultiStepLR decay.
  config.architecture = "vamp"
  config.init = "he_normal"  # The script's he_init: N(0, 2/fan_in) weights, torch biases.
  config.dataset = "binarized_mnist"
  config.binarize = "none"  # The data set is binary already (pixels 0 or 255).
  config.num_steps = 2_000 * STEPS_PER_EPOCH
  config.encoder_hidden = (300, 300)  # GatedDense widths.
  config.decoder_hidden = (300, 300)
  config.num_pseudo_inputs = 500  # K: pseudo-inputs, the VampPrior's mixture components.
  config.optimizer = "rmsprop"
  config.kl_warmup_steps = 100 * STEPS_PER_EPOCH  # pythae's linear_scheduling_steps: 100 epochs.
  config.kl_warmup_every = STEPS_PER_EPOCH  # One weight per epoch, as pythae's epoch-wise β.
  config.sample_every = 50_000
  return config
