"""pythae's reproduced VAE (github clementchadebec/benchmark_VAE,
examples/scripts/reproducibility/vae.py) written out in PyTorch, trained and scored on exactly
the binarised digits of the `vae_pythae` results row: it separates what our code does from what
the data does. Needs torch (not a dependency); run by hand:

  python benchmarks/pythae_vae_torch.py [--steps 250000] [--threads 1] [--rounds 5]
      [--out FILE.json]

Same as pythae: nn.Linear layers with PyTorch's default initialisation, 784 → 400 ReLU →
(μ, log σ²) ∈ R^40, 40 → 400 ReLU → 784 sigmoid, loss = Σ BCE + KL (mean over the batch),
torch.optim.Adam(1e-4), the rate × 10^(−1/5) after 200 and 350 epochs of 500 batches of 100
(MultiStepLR), the final model scored by 5 rounds of pythae's get_nll estimator with 200
importance samples (here batched over images). As the row: MNIST's 60,000 training digits
binarised once from seed 0 (genimg_jax.data.binarize.static), batches drawn as epochs of a
fresh permutation, the 10,000 test digits binarised once from seed 0.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # configs/ is imported from the repository root.
  sys.path.insert(0, REPO_ROOT)


def binarised(split: str) -> np.ndarray:
  """float32 [N, 784] in {0, 1}: the row's split (configs/vae_pythae.py on mnist, seed 0)."""
  from genimg_jax import config_cli
  from genimg_jax.data import load_split

  config = config_cli.load_config("vae_pythae")
  config.dataset = "mnist"
  images = np.asarray(load_split(config, split).images)
  return (images.reshape(len(images), -1) > 127).astype(np.float32)


def build(torch):
  nn = torch.nn

  class VAE(nn.Module):
    def __init__(self):
      super().__init__()
      self.hidden = nn.Sequential(nn.Linear(784, 400), nn.ReLU())
      self.mu, self.log_var = nn.Linear(400, 40), nn.Linear(400, 40)
      self.decoder = nn.Sequential(nn.Linear(40, 400), nn.ReLU(), nn.Linear(400, 784),
                                   nn.Sigmoid())

    def encode(self, x):
      h = self.hidden(x)
      return self.mu(h), self.log_var(h)

  return VAE()


def flax_init(torch, model) -> None:
  """Flax's Dense defaults instead of PyTorch's: kernels LeCun normal (variance 1 / fan_in,
  truncated at 2σ), biases 0: to see what the initialisation alone does."""
  for layer in model.modules():
    if isinstance(layer, torch.nn.Linear):
      std = math.sqrt(1.0 / layer.in_features) / 0.87962566103423978  # Truncation's variance.
      torch.nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
      torch.nn.init.zeros_(layer.bias)


def neg_elbo(torch, model, x):
  """pythae's VAE loss: Σ_pixels BCE(x̂, x) + KL(q(z|x) ‖ N(0, I)), mean over the batch."""
  mu, log_var = model.encode(x)
  z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
  recon = torch.nn.functional.binary_cross_entropy(model.decoder(z), x, reduction="none")
  kl = -0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp(), dim=-1)
  return (recon.sum(-1) + kl).mean()


def nll(torch, model, x, k: int, generator, batch: int = 100) -> float:
  """pythae's get_nll: −mean_x log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x), z_j ~ q(z|x)."""
  total = 0.0
  with torch.no_grad():
    for start in range(0, len(x), batch):
      xb = x[start:start + batch]
      mu, log_var = model.encode(xb)
      std = torch.exp(0.5 * log_var)
      z = mu + std * torch.randn((k,) + mu.shape, generator=generator)  # [k, B, 40]
      log_q = -0.5 * (log_var + (z - mu) ** 2 / log_var.exp()).sum(-1)
      log_p_z = -0.5 * (z ** 2).sum(-1)  # log 2π cancels against q's.
      recon = model.decoder(z)
      log_p_x = -torch.nn.functional.binary_cross_entropy(
          recon, xb.expand_as(recon), reduction="none").sum(-1)
      log_w = log_p_x + log_p_z - log_q
      total += float((torch.logsumexp(log_w, 0) - math.log(k)).sum())
  return -total / len(x)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=250_000)
  parser.add_argument("--threads", type=int, default=1)
  parser.add_argument("--seed", type=int, default=123)  # pythae's vae.py seeds torch with 123.
  parser.add_argument("--rounds", type=int, default=5, help="rounds of the IS-200 NLL")
  parser.add_argument("--init", choices=("pytorch", "flax"), default="pytorch",
                      help="layer initialisation: PyTorch's defaults (pythae) or Flax's")
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  import torch

  torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  train, test = torch.from_numpy(binarised("train")), torch.from_numpy(binarised("test"))
  model = build(torch)
  if args.init == "flax":
    flax_init(torch, model)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
  per_epoch = 50_000 // 100  # pythae's epoch: 500 batches of 100.
  scheduler = torch.optim.lr_scheduler.MultiStepLR(
      optimizer, [m * per_epoch for m in (200, 350, 500, 750, 1000)], gamma=10 ** (-1 / 5))
  order, position, start = torch.randperm(len(train)), 0, time.perf_counter()
  for step in range(1, args.steps + 1):
    if position + 100 > len(train):
      order, position = torch.randperm(len(train)), 0
    loss = neg_elbo(torch, model, train[order[position:position + 100]])
    position += 100
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()  # Counted in steps: the milestones are epochs × 500.
    if step % 10_000 == 0:
      print(f"step {step} | loss {float(loss.detach()):.2f} | "
            f"lr {scheduler.get_last_lr()[0]:.3g} | "
            f"{step / (time.perf_counter() - start):.0f} steps/s", flush=True)
  model.eval()
  with torch.no_grad():
    test_elbo = float(np.mean([float(neg_elbo(torch, model, test[i:i + 1000]))
                               for i in range(0, len(test), 1000)]))
  generator = torch.Generator().manual_seed(1000)
  rounds = [nll(torch, model, test, 200, generator) for _ in range(args.rounds)]
  result = {"steps": args.steps, "test_neg_elbo": test_elbo,
            "iwae_nll_200": float(np.mean(rounds)), "iwae_nll_200_rounds": rounds,
            "seconds": time.perf_counter() - start,  # Training and scoring.
            "torch": torch.__version__, "threads": args.threads, "init": args.init}
  print(json.dumps(result))
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)


if __name__ == "__main__":
  main()
