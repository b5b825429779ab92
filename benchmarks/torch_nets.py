"""The project's networks in PyTorch (NCHW), built from the same configs with the same layer
sizes, activations, dropout and BatchNorm as genimg_jax/models/: the reference side of
benchmarks/compare.py. Imports torch, so load it through torch_reference.py (which says so
in one line when torch is missing).

Initialisation is torch's default, not Flax's (lecun-normal kernels, zero biases): it changes
no shape and no cost, so speed is comparable. A SAME convolution with an even total padding is
the same in both; an odd one (5×5, stride 2) pads one more row before than after in torch and
the reverse in Flax (same output size and cost). Flax's transposed-conv SAME padding likewise
differs from torch's `padding, output_padding` by a one-pixel shift only.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

STANDARD_CNN_SIZES = {32: ((4, 2, 1), 0), 64: ((4, 2, 1, 0.5), 1)}  # As models/standard_cnn.py.
VAE_ROLES = ("encoder", "decoder")
GAN_ROLES = ("generator", "discriminator")


def activation(name: str, slope: float = 0.2) -> nn.Module:
  """The module for a config's activation name (models/mlp.py's get_activation)."""
  modules = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(slope), "tanh": nn.Tanh,
             "sigmoid": nn.Sigmoid, "identity": nn.Identity}
  if name not in modules:
    raise ValueError(f"unknown activation {name!r}")
  return modules[name]()


def batch_norm(features: int, flax_momentum: float, dims: int) -> nn.Module:
  """BatchNorm with Flax's eps 1e-5; Flax's momentum m (running = m·running + (1 − m)·batch)
  is torch's momentum 1 − m."""
  cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
  return cls(features, eps=1e-5, momentum=1.0 - flax_momentum)


def dense_stack(width_in: int, widths, act: str, slope: float, dropout: float = 0.0):
  """Linear(w) → activation (→ dropout) per width (models/mlp.py's hidden_layers)."""
  layers = []
  for width in widths:
    layers += [nn.Linear(width_in, width), activation(act, slope)]
    if dropout > 0:
      layers.append(nn.Dropout(dropout))
    width_in = width
  return layers, width_in


def same_conv_padding(kernel: int, stride: int) -> int:
  """Symmetric padding giving SAME's output size ceil(H / stride) for these kernels."""
  return (kernel - 1) // 2 if stride == 1 else (kernel - stride + 1) // 2


def conv_transpose_same(c_in, c_out, kernel, stride, bias=True) -> nn.ConvTranspose2d:
  """A transposed conv with output = input · stride (Flax's SAME conv_transpose)."""
  padding = (kernel - stride + 1) // 2
  output_padding = 2 * padding + stride - kernel
  return nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, output_padding, bias=bias)


class Reshape(nn.Module):
  """[B, ...] → [B, *shape]."""

  def __init__(self, *shape):
    super().__init__()
    self.shape = shape

  def forward(self, x):
    return x.reshape(x.shape[0], *self.shape)


class Logit(nn.Module):
  """[B, 1] → [B] (D's logits)."""

  def forward(self, x):
    return x[:, 0]


# ------------------------------------------------------------------------------- GAN networks

def mlp_gan(config, image_shape):
  """models/mlp.py: G z → hidden → prod(image) (tanh / sigmoid); D flatten → hidden (+ dropout)
  → 1."""
  h, w, c = image_shape
  pixels = h * w * c
  body, width = dense_stack(config.latent_dim, config.generator_hidden, config.activation,
                            config.leaky_relu_slope)
  generator = nn.Sequential(*body, nn.Linear(width, pixels),
                            activation(config.output_activation), Reshape(c, h, w))
  body, width = dense_stack(pixels, config.discriminator_hidden, config.activation,
                            config.leaky_relu_slope, config.discriminator_dropout)
  discriminator = nn.Sequential(nn.Flatten(), *body, nn.Linear(width, 1), Logit())
  return generator, discriminator


def dcgan(config, image_shape):
  """models/dcgan.py: G Dense (no bias) → BN → LReLU → ConvT 5×5 s1, s2 (no bias, BN, LReLU)
  → ConvT C 5×5 s2 → tanh; D Conv 5×5 s2 → LReLU → Dropout per width → Dense 1."""
  h, _, c = image_shape
  start, base, slope = h // 4, config.generator_base_channels, config.leaky_relu_slope
  momentum = config.batch_norm_momentum
  layers = [nn.Linear(config.latent_dim, start * start * base, bias=False),
            batch_norm(start * start * base, momentum, 1), nn.LeakyReLU(slope),
            Reshape(base, start, start)]
  width = base
  for width_out, stride in ((base // 2, 1), (base // 4, 2)):
    layers += [conv_transpose_same(width, width_out, 5, stride, bias=False),
               batch_norm(width_out, momentum, 2), nn.LeakyReLU(slope)]
    width = width_out
  generator = nn.Sequential(*layers, conv_transpose_same(width, c, 5, 2, bias=False), nn.Tanh())
  layers, width, side = [], c, h
  for width_out in config.discriminator_channels:
    layers += [nn.Conv2d(width, width_out, 5, 2, same_conv_padding(5, 2)), nn.LeakyReLU(slope),
               nn.Dropout(config.discriminator_dropout)]
    width, side = width_out, -(-side // 2)
  discriminator = nn.Sequential(*layers, nn.Flatten(), nn.Linear(width * side * side, 1), Logit())
  return generator, discriminator


def standard_cnn(config, image_shape):
  """models/standard_cnn.py (SNGAN paper's standard CNN); spectral norm on every D layer
  (one power iteration per training forward) when config.spectral_norm."""
  side, _, c = image_shape
  if side not in STANDARD_CNN_SIZES:
    raise ValueError(f"the standard CNN takes 32×32 or 64×64 images, not {side}×{side}")
  multiples, extra = STANDARD_CNN_SIZES[side]
  gw, dw, momentum = config.generator_width, config.discriminator_width, config.batch_norm_momentum
  start = 8 * gw
  layers = [nn.Linear(config.latent_dim, 4 * 4 * start), batch_norm(4 * 4 * start, momentum, 1),
            nn.ReLU(), Reshape(start, 4, 4)]
  width = start
  for multiple in multiples:
    width_out = max(1, int(multiple * gw))
    layers += [conv_transpose_same(width, width_out, 4, 2), batch_norm(width_out, momentum, 2),
               nn.ReLU()]
    width = width_out
  generator = nn.Sequential(*layers, nn.Conv2d(width, c, 3, 1, 1), nn.Tanh())
  sn = _spectral_norm if config.spectral_norm else (lambda m: m)
  spec = [(1, 3, 1), (1, 4, 2), (2, 3, 1), (2, 4, 2), (4, 3, 1), (4, 4, 2), (8, 3, 1)]
  layers, width, size = [], c, side
  for multiple, kernel, stride in spec + [(8, 4, 2)] * extra:
    layers += [sn(nn.Conv2d(width, multiple * dw, kernel, stride, 1)),
               nn.LeakyReLU(config.leaky_relu_slope)]
    width, size = multiple * dw, size // stride
  discriminator = nn.Sequential(*layers, nn.Flatten(), sn(nn.Linear(width * size * size, 1)),
                                Logit())
  return generator, discriminator


GAN_ARCHITECTURES = {"mlp": mlp_gan, "dcgan": dcgan, "standard_cnn": standard_cnn}


# ------------------------------------------------------------------------------- VAE networks

class VAE(nn.Module):
  """encoder: images → (μ, log σ²); decoder: z → pixel logits [B, C, H, W]."""

  def __init__(self, encoder: nn.Module, decoder: nn.Module):
    super().__init__()
    self.encoder, self.decoder = encoder, decoder


class Heads(nn.Module):
  """features → (μ, log σ²): two Linear heads (the Flax modules' `mean` and `logvar`)."""

  def __init__(self, body: nn.Module, width: int, latent: int):
    super().__init__()
    self.body, self.mean, self.logvar = body, nn.Linear(width, latent), nn.Linear(width, latent)

  def forward(self, x):
    x = self.body(x)
    return self.mean(x), self.logvar(x)


def mlp_vae(config, image_shape):
  """models/mlp.py's Encoder / Decoder (the seed's VAE)."""
  h, w, c = image_shape
  pixels, slope = h * w * c, config.leaky_relu_slope
  body, width = dense_stack(pixels, config.encoder_hidden, config.activation, slope)
  encoder = Heads(nn.Sequential(nn.Flatten(), *body), width, config.latent_dim)
  body, width = dense_stack(config.latent_dim, config.decoder_hidden, config.activation, slope)
  decoder = nn.Sequential(*body, nn.Linear(width, pixels), Reshape(c, h, w))
  return VAE(encoder, decoder)


def conv_vae(config, image_shape):
  """models/conv_vae.py: Conv 4×4 s2 per width → Dense → heads; Dense → Dense → ConvT back."""
  h, w, c = image_shape
  channels, slope, act = tuple(config.conv_channels), config.leaky_relu_slope, config.activation
  scale = 2 ** len(channels)
  layers, width = [], c
  for width_out in channels:
    layers += [nn.Conv2d(width, width_out, 4, 2, same_conv_padding(4, 2)), activation(act, slope)]
    width = width_out
  flat = (h // scale) * (w // scale) * channels[-1]
  body, width = dense_stack(flat, config.encoder_hidden, act, slope)
  encoder = Heads(nn.Sequential(*layers, nn.Flatten(), *body), width, config.latent_dim)
  body, width = dense_stack(config.latent_dim, config.decoder_hidden, act, slope)
  layers = [*body, nn.Linear(width, flat), activation(act, slope),
            Reshape(channels[-1], h // scale, w // scale)]
  widths, width = (*reversed(channels[:-1]), c), channels[-1]
  for i, width_out in enumerate(widths):
    layers.append(conv_transpose_same(width, width_out, 4, 2))
    if i < len(widths) - 1:
      layers.append(activation(act, slope))
    width = width_out
  return VAE(encoder, nn.Sequential(*layers))


VAE_ARCHITECTURES = {"mlp": mlp_vae, "conv_vae": conv_vae}


def networks(config, image_shape) -> dict:
  """{role: module} of a config: generator / discriminator, or encoder / decoder. ValueError
  for what has no PyTorch reference here (conditional models, the IWAE objective)."""
  if config.get("conditional"):
    raise ValueError("class-conditional models have no PyTorch reference here")
  if config.family == "gan" and config.architecture in GAN_ARCHITECTURES:
    return dict(zip(GAN_ROLES, GAN_ARCHITECTURES[config.architecture](config, image_shape)))
  if config.family == "vae" and config.architecture in VAE_ARCHITECTURES:
    if config.objective != "elbo":
      raise ValueError(f"the {config.objective!r} objective has no PyTorch reference here")
    vae = VAE_ARCHITECTURES[config.architecture](config, image_shape)
    return {"encoder": vae.encoder, "decoder": vae.decoder}
  raise ValueError(f"no PyTorch reference for {config.family} architecture "
                   f"{config.architecture!r}")


def parameter_count(module: nn.Module) -> int:
  """Trainable parameters (a spectral-normed weight counts once, as its `original`)."""
  return sum(p.numel() for p in module.parameters())


def forward_macs(module: nn.Module, example: torch.Tensor) -> int:
  """Nominal multiply-adds of one forward pass on `example` (batch 1), by layer hooks, with
  benchmarks/flops.py's rules: Linear in·out, Conv Ho·Wo·kh·kw·Ci·Co/groups, ConvT
  Hi·Wi·kh·kw·Ci·Co."""
  total = [0]

  def hook(layer, inputs, output):
    x = inputs[0]
    if isinstance(layer, nn.Linear):
      total[0] += math.prod(x.shape[:-1]) * layer.in_features * layer.out_features
    elif isinstance(layer, nn.ConvTranspose2d):
      total[0] += (x.shape[0] * x.shape[2] * x.shape[3] * math.prod(layer.kernel_size)
                   * layer.in_channels * layer.out_channels)
    elif isinstance(layer, nn.Conv2d):
      total[0] += (output.shape[0] * output.shape[2] * output.shape[3]
                   * math.prod(layer.kernel_size) * layer.in_channels * layer.out_channels
                   // layer.groups)

  layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d,
                                                          nn.ConvTranspose2d))]
  handles = [m.register_forward_hook(hook) for m in layers]
  was_training = module.training
  try:
    module.eval()  # BatchNorm on one example needs the running averages.
    with torch.no_grad():
      module(example)
  finally:
    module.train(was_training)
    for handle in handles:
      handle.remove()
  return total[0]


def network_inputs(config, image_shape, device) -> dict:
  """{role: one example input} for forward_macs."""
  h, w, c = image_shape
  image = torch.zeros(1, c, h, w, device=device)
  z = torch.zeros(1, config.latent_dim, device=device)
  if config.family == "gan":
    return {"generator": z, "discriminator": image}
  return {"encoder": image, "decoder": z}


def gan_losses(name: str):
  """(L_D(real, fake), L_G(fake)) from logits, as genimg_jax/losses/gan.py."""
  if name in ("non_saturating", "minimax"):
    d = lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean()
    g = ((lambda f: -F.logsigmoid(f).mean()) if name == "non_saturating"
         else (lambda f: F.logsigmoid(-f).mean()))
    return d, g
  if name == "hinge":
    return (lambda r, f: F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()), (lambda f: -f.mean())
  if name == "least_squares":
    return ((lambda r, f: 0.5 * ((r - 1.0) ** 2).mean() + 0.5 * (f**2).mean()),
            (lambda f: 0.5 * ((f - 1.0) ** 2).mean()))
  if name == "wgan_gp":
    return (lambda r, f: f.mean() - r.mean()), (lambda f: -f.mean())
  raise ValueError(f"unknown GAN loss {name!r}")


def vae_loss(logits, images, mean, logvar, beta: float, likelihood: str, sigma: float):
  """E_x[−log p(x|z) + β·KL(q ‖ N(0, I))] per genimg_jax/losses/vae.py (sums per image)."""
  if likelihood == "bernoulli":
    recon = F.binary_cross_entropy_with_logits(logits, images, reduction="none").flatten(1).sum(1)
  else:
    pixels = math.prod(images.shape[1:])
    recon = (((images - torch.sigmoid(logits)) ** 2).flatten(1).sum(1) / (2.0 * sigma**2)
             + 0.5 * pixels * math.log(2.0 * math.pi * sigma**2))
  kl = -0.5 * (1.0 + logvar - mean**2 - logvar.exp()).flatten(1).sum(1)
  return (recon + beta * kl).mean()
