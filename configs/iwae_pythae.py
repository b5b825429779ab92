"""The IWAE of pythae's reproducibility script (`--model iwae_pythae`; github
clementchadebec/benchmark_VAE, examples/scripts/reproducibility/iwae.py; reported NLL 86.82 with
5,000 importance samples): the `iwae_burda` networks (tanh 784 → 200 → 200 → (μ, log σ²) ∈
R^50, 50 → 200 → 200 → 784 Bernoulli logits) trained on the k = 50 bound, on Larochelle's fixed
binarisation of MNIST (50,000 training images, used as loaded: the script binarises nothing
afresh); Adam(1e-3, ε = 1e-4) at batch 20 for 3,280 epochs (8,200,000 steps), the rate
× 10^(−1/7) after epochs 2, 5, 14, 28, 41, 122, 365 and 1,094 (MultiStepLR stepped once per
epoch; the script's milestones, not the paper's 3^i passes); Glorot-uniform kernels and zero
biases (the script's `unif_init`). Scored as the script does: `python -m genimg_jax.evaluate
--iwae_k 5000`, 5 rounds.

As pythae's trainer, the validation loss is checked every epoch and the best model is kept and
scored (select_model="best_validation"; our validation score is the −ELBO of the validation
split, pythae's the IWAE training loss on it: both pick by the same data, with another score).

Differences that remain:
- Randomness: seed 0 and JAX's generators (pythae: torch.manual_seed(123)).
- pythae scores σ(logits) with `F.binary_cross_entropy`, whose logs are clamped at −100 (a
  pixel with |logit| ≳ 17 on the wrong side costs at most 100 nats and passes no gradient);
  here −log σ(±l) is exact. Its loss value is −Σ_i w̃_i log w_i with w̃ the normalised weights
  held constant: the same gradient as −log (1/k) Σ_i w_i, which is the loss reported here.
"""

from configs import iwae_burda

STEPS_PER_EPOCH = 50_000 // 20  # pythae's epoch: the 50,000 training images, batch 20.
MILESTONES = (2, 5, 14, 28, 41, 122, 365, 1094)  # Epochs after which the rate drops.


def get_config():
  config = iwae_burda.get_config()  # mlp2, tanh, 200-200, R^50, batch 20, Adam(1e-3), iwae.
  config.dataset = "binarized_mnist"
  config.binarize = "none"  # The data set is binary already (pixels 0 or 255).
  config.num_importance_samples = 50
  config.adam_eps = 1e-4
  config.lr_boundaries = tuple(m * STEPS_PER_EPOCH for m in MILESTONES)
  config.lr_decay_factor = 10 ** (-1 / 7)
  config.num_steps = 3_280 * STEPS_PER_EPOCH
  config.init = "glorot_zero"  # The script's unif_init: Glorot-uniform kernels, zero biases.
  config.select_model = "best_validation"
  config.validation_every = STEPS_PER_EPOCH  # pythae validates once per epoch.
  config.log_every = 2_500
  config.sample_every = 250_000
  config.checkpoint_every = 25_000
  return config
