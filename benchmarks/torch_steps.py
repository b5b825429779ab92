"""The GAN and VAE training steps in PyTorch, as genimg_jax/train/gan_step.py and vae_step.py
do them, with the data held on the device and each step's rows drawn there; eager or under
`torch.compile`. Imports torch: load it through torch_reference.py.

GAN step: n_critic D updates, each on its own real batch and fresh fakes (G in train mode,
no gradient), then one G update with fresh noise against the updated D (D's weights frozen, so
no D weight gradients are computed, as in JAX). WGAN-GP adds λ·E[(‖∇l(x̂)‖ − 1)²] on
x̂ = αx + (1 − α)G(z). VAE step: z = μ + σ·ε, Bernoulli BCE from logits + analytic KL.
Adam(lr, (β1, β2), eps 1e-8) as optax.adam; sngan / wgan_gp decay the step size linearly.

Under `torch.compile` each loss (forward, backward by AOTAutograd) and each optimizer step is
compiled. WGAN-GP's penalty stays eager: torch.compile has no double backward.
"""

import math
import time

import numpy as np
import torch

from benchmarks import torch_nets

WARMUP_STEPS = 3  # Untimed steps first: compile (and recompile on the optimizer's lazy state).


def synthetic_images(num_examples: int, image_shape, device) -> torch.Tensor:
  """uint8 [N, C, H, W] on `device`: the same values as benchmarks/rows.py's synthetic set."""
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (num_examples, *image_shape), dtype=np.uint8)
  return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)


class Sampler:
  """Each epoch a random permutation of the set (on the device); each step the next rows."""

  def __init__(self, data: torch.Tensor, rows_per_step: int):
    if rows_per_step > len(data):
      raise ValueError(f"{rows_per_step} rows per step, {len(data)} in the set")
    self.data, self.rows = data, rows_per_step
    self.steps_per_epoch = len(data) // rows_per_step
    self.position = self.steps_per_epoch  # A fresh order on the first draw.

  def next(self) -> torch.Tensor:
    if self.position == self.steps_per_epoch:
      self.order = torch.randperm(len(self.data), device=self.data.device)
      self.position = 0
    start = self.position * self.rows
    self.position += 1
    return self.data.index_select(0, self.order[start:start + self.rows])


class Optimizer:
  """Adam on `modules`' parameters, its step compiled or not, with config's schedule."""

  def __init__(self, modules, config, updates_per_step: int, compiled: bool, compile_mode):
    params = [p for m in modules for p in m.parameters()]
    lr = config.learning_rate
    # A float lr changed every step would recompile the compiled step: a tensor there.
    self.opt = torch.optim.Adam(params, lr=torch.tensor(lr) if compiled else lr,
                                betas=(config.adam_b1, config.adam_b2), eps=1e-8)
    self.base_lr, self.count = lr, 0
    linear = config.get("lr_schedule", "constant") == "linear"
    self.decay_steps = config.num_steps * updates_per_step if linear else 0
    self._step = self.opt.step
    if compiled:
      self._step = torch.compile(lambda: self.opt.step(), mode=compile_mode)

  def update(self, loss: torch.Tensor) -> None:
    self.opt.zero_grad(set_to_none=True)
    loss.backward()
    if self.decay_steps:  # optax.linear_schedule(lr, 0, decay_steps) at this update count.
      lr = self.base_lr * (1.0 - min(self.count / self.decay_steps, 1.0))
      for group in self.opt.param_groups:
        if torch.is_tensor(group["lr"]):
          group["lr"].fill_(lr)
        else:
          group["lr"] = lr
    self._step()
    self.count += 1


class Trainer:
  """What both families share: networks on the device in train mode, compilation, data."""

  def __init__(self, config, image_shape, batch_size: int, data, compiled: bool,
               compile_mode: str = "default", rows_per_step: int | None = None):
    self.config, self.batch_size, self.device = config, batch_size, data.device
    self.compiled, self.compile_mode = compiled, compile_mode
    self.nets = {role: net.to(self.device).train()
                 for role, net in torch_nets.networks(config, image_shape).items()}
    self.sampler = Sampler(data, rows_per_step or batch_size)
    self.latent_dim = config.latent_dim

  def _compile(self, fn):
    return torch.compile(fn, mode=self.compile_mode) if self.compiled else fn

  def _optimizer(self, roles, updates_per_step=1) -> Optimizer:
    return Optimizer([self.nets[r] for r in roles], self.config, updates_per_step,
                     self.compiled, self.compile_mode)

  def _noise(self) -> torch.Tensor:
    return torch.randn(self.batch_size, self.latent_dim, device=self.device)


class GANTrainer(Trainer):
  """One step = n_critic D updates, then one G update (genimg_jax/train/gan_step.py)."""

  def __init__(self, config, image_shape, batch_size, data, compiled, compile_mode="default"):
    super().__init__(config, image_shape, batch_size, data, compiled, compile_mode,
                     rows_per_step=batch_size * config.n_critic)
    self.G, self.D = self.nets["generator"], self.nets["discriminator"]
    lo, hi = (-1.0, 1.0) if config.output_activation == "tanh" else (0.0, 1.0)
    self.scale, self.offset = (hi - lo) / 255.0, lo
    self.d_loss_fn, self.g_loss_fn = torch_nets.gan_losses(config.loss)
    self.n_critic, self.gp_weight = config.n_critic, config.gp_weight
    self.g_opt = self._optimizer(["generator"])
    self.d_opt = self._optimizer(["discriminator"], updates_per_step=self.n_critic)
    self._d_loss = self._compile(self._d_loss_eager)
    self._g_loss = self._compile(self._g_loss_eager)

  def _d_loss_eager(self, real_u8, z):
    real = real_u8.to(torch.float32) * self.scale + self.offset
    with torch.no_grad():  # Fresh fakes from G in train mode (BatchNorm averages advance).
      fake = self.G(z)
    logits = self.D(torch.cat([real, fake]))  # One D pass on real and fake rows, as in JAX.
    b = real.shape[0]
    return self.d_loss_fn(logits[:b], logits[b:]), real, fake

  def _g_loss_eager(self, z):
    return self.g_loss_fn(self.D(self.G(z)))

  def _penalty(self, real, fake):
    """λ·E[(‖∇_x̂ l(x̂)‖₂ − 1)²], α ~ U(0, 1) per example; eager (a double backward)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=self.device)
    x_hat = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)
    return self.gp_weight * ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()

  def step(self) -> None:
    rows, b = self.sampler.next(), self.batch_size
    for i in range(self.n_critic):  # One real batch per D update.
      loss, real, fake = self._d_loss(rows[i * b:(i + 1) * b], self._noise())
      if self.gp_weight > 0:
        loss = loss + self._penalty(real, fake)
      self.d_opt.update(loss)
    self.D.requires_grad_(False)  # G's update: gradients for G's weights only.
    try:
      self.g_opt.update(self._g_loss(self._noise()))
    finally:
      self.D.requires_grad_(True)


class VAETrainer(Trainer):
  """One Adam step on the β-weighted negative ELBO (genimg_jax/train/vae_step.py)."""

  def __init__(self, config, image_shape, batch_size, data, compiled, compile_mode="default"):
    super().__init__(config, image_shape, batch_size, data, compiled, compile_mode)
    self.encoder, self.decoder = self.nets["encoder"], self.nets["decoder"]
    self.opt = self._optimizer(["encoder", "decoder"])
    self._loss = self._compile(self._loss_eager)

  def _loss_eager(self, images_u8, eps):
    images = images_u8.to(torch.float32) * (1.0 / 255.0)  # Pixels in [0, 1].
    mean, logvar = self.encoder(images)
    z = mean + torch.exp(0.5 * logvar) * eps
    config = self.config
    return torch_nets.vae_loss(self.decoder(z), images, mean, logvar, config.beta,
                               config.likelihood, config.gaussian_sigma)

  def step(self) -> None:
    self.opt.update(self._loss(self.sampler.next(), self._noise()))


def build_trainer(config, image_shape, batch_size, data, compiled, compile_mode="default"):
  """The family's trainer for a config (ValueError for what has no reference)."""
  cls = GANTrainer if config.family == "gan" else VAETrainer
  if compiled:  # Fresh compile caches: no reuse of, and no cache limit from, earlier rows.
    torch._dynamo.reset()
  return cls(config, image_shape, batch_size, data, compiled, compile_mode)


def synchronize(device) -> None:
  if device.type == "cuda":
    torch.cuda.synchronize(device)


class Timer:
  """Warm-up (compile), then windows of a fixed step count that last at least min_window_s."""

  def __init__(self, trainer: Trainer):
    self.trainer, self.device = trainer, trainer.device
    self.steps_per_window = 1

  def _run(self, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
      self.trainer.step()
    synchronize(self.device)
    return time.perf_counter() - start

  def warm_up(self, min_window_s: float) -> dict:
    """WARMUP_STEPS steps, one timed step, then the window's step count; returns the seconds
    (compile_s: warm-up time beyond the same steps at the timed rate; 0 for eager)."""
    warmup_s = self._run(WARMUP_STEPS)
    step_s = self._run(1)
    self.steps_per_window = max(1, math.ceil(min_window_s / max(step_s, 1e-9)))
    compile_s = max(0.0, warmup_s - WARMUP_STEPS * step_s) if self.trainer.compiled else 0.0
    return {"warmup_s": warmup_s, "compile_s": compile_s, "first_step_s": step_s}

  def window(self) -> float:
    """One timing window; returns its steps/s."""
    return self.steps_per_window / self._run(self.steps_per_window)


def device_name(device) -> str:
  """The GPU's name, or the CPU's model name (/proc/cpuinfo)."""
  if device.type == "cuda":
    return torch.cuda.get_device_name(device)
  try:
    with open("/proc/cpuinfo") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return names[0] if names else "cpu"
  except OSError:
    return "cpu"
