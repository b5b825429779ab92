"""Analytic multiply-add (MAC) counts: every Dense / Conv / ConvTranspose call of a Flax Linen
network, found by intercepting module calls, then combined into one training step per family.

Two counts per layer (per example; `B` = batch rows through the layer):
- nominal (the usual convention, used for % of peak):
  Dense B·in·out; Conv B·H_out·W_out·kh·kw·C_in·C_out/groups;
  ConvTranspose B·H_in·W_in·kh·kw·C_in·C_out.
- valid: only the (output, kernel tap) pairs whose input lies inside the image, i.e. without the
  zero padding of SAME convs and the holes of a transposed conv's dilated input. This is what
  XLA's cost analysis counts (2 FLOPs per valid MAC), so it is the one checked against XLA.
The step formulas are in `step_macs` and benchmarks/README.md.
"""

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from genimg_jax.train.gan_step import GAN

LAYERS = (nn.Dense, nn.Conv, nn.ConvTranspose)  # The layers counted; the rest is elementwise.
GAN_ROLES = ("generator", "discriminator")
VAE_ROLES = ("encoder", "decoder")


@dataclasses.dataclass(frozen=True)
class LayerMacs:
  """One layer call: its kind, which network (role) and its MACs for the traced batch."""

  kind: str  # "Dense", "Conv" or "ConvTranspose".
  role: str  # "generator", "discriminator", "encoder", "decoder" or the root module's name.
  macs: int  # Nominal multiply-adds.
  valid_macs: int  # Multiply-adds with the input inside the image (XLA's count).


@dataclasses.dataclass(frozen=True)
class NetworkMacs:
  """Per-example MACs of one network's forward pass and of its first layer."""

  forward: int = 0
  first: int = 0  # The first layer: no input gradient when the network input is data.

  def __add__(self, other):
    return NetworkMacs(self.forward + other.forward, self.first or other.first)


def _valid_taps(module, spatial_in) -> int:
  """(output position, tap) pairs inside the image: the sum of the layer applied, with one
  channel, a kernel of ones and no bias, to an image of ones (flax's own padding rules)."""
  fields = dict(parent=None, features=1, use_bias=False, kernel_init=nn.initializers.ones,
                dtype=jnp.float32, param_dtype=jnp.float32)
  if isinstance(module, nn.Conv):
    fields["feature_group_count"] = 1
  probe = module.clone(**fields)
  x = jnp.ones((1, *spatial_in, 1), jnp.float32)
  try:
    device = jax.devices("cpu")[0]  # A few tiny ops: keep them off the accelerator.
  except RuntimeError:
    device = jax.devices()[0]
  with jax.default_device(device):
    return int(round(float(jnp.sum(probe.apply(probe.init(jax.random.PRNGKey(0), x), x)))))


def layer_macs(module, x_shape, y_shape) -> int:
  """Nominal MACs of one Dense / Conv / ConvTranspose call, input shape x, output shape y."""
  if isinstance(module, nn.Dense):
    return math.prod(x_shape) * module.features  # B·in·out.
  # A conv over a stride-dilated input (models/conv_layers.ConvTranspose) is a transposed
  # conv: counted as one, per input pixel, not per output pixel of the dilated image.
  dilation = getattr(module, "input_dilation", None)
  dilated = dilation is not None and any(d != 1 for d in (
      (dilation,) if isinstance(dilation, int) else tuple(dilation)))
  conv = not isinstance(module, nn.ConvTranspose) and not dilated
  kernel = module.kernel_size
  kernel = (kernel,) if isinstance(kernel, int) else tuple(kernel)
  c_in, c_out = x_shape[-1], module.features
  groups = module.feature_group_count if conv else 1
  weights = math.prod(kernel) * c_in * c_out // groups  # kh·kw·C_in·C_out/groups.
  positions = math.prod(y_shape[:-1]) if conv else math.prod(x_shape[:-1])  # B·H·W (out / in).
  return positions * weights


def _conv_key(module, x_shape):
  kernel = module.kernel_size
  kernel = (kernel,) if isinstance(kernel, int) else tuple(kernel)
  spatial = tuple(x_shape[-1 - len(kernel):-1])
  return (type(module).__name__, kernel, str(module.strides), str(module.padding),
          str(getattr(module, "input_dilation", None)), str(module.kernel_dilation), spatial)


def _valid_macs(module, x_shape, cache: dict) -> int:
  """Valid MACs of a call: batch · valid taps · C_in · C_out / groups (Dense: all of them)."""
  if isinstance(module, nn.Dense):
    return math.prod(x_shape) * module.features
  key = _conv_key(module, x_shape)
  if key not in cache:
    cache[key] = _valid_taps(module, key[-1])
  groups = module.feature_group_count if isinstance(module, nn.Conv) else 1
  batch = math.prod(x_shape[:-1 - len(key[1])])
  return batch * cache[key] * x_shape[-1] * module.features // groups


def trace_layers(fn, *args, valid_cache=None) -> list[LayerMacs]:
  """Every counted layer call made by `fn(*args)` (run under jax.eval_shape: nothing computed).

  A layer called again within the same enclosing call with the same variables (e.g. the
  extra shape trace of nn.SpectralNorm at init) is counted once. The role is the name of the
  root module's child the call sits under if that is encoder/decoder, else the root's class
  (calls through the root's own methods, e.g. VAE.encode → encoder, count as the child's).
  """
  valid_cache = {} if valid_cache is None else valid_cache
  calls, stack, seen = [], [], set()  # stack: (serial, module) of the active module calls.
  serial = iter(range(1 << 62))

  def interceptor(next_fun, call_args, kwargs, context):
    module = context.module
    stack.append((next(serial), module))
    try:
      out = next_fun(*call_args, **kwargs)
    finally:
      stack.pop()
    if (context.method_name == "__call__" and isinstance(module, LAYERS) and call_args
        and hasattr(call_args[0], "shape")):
      outer = [number for number, m in stack if not isinstance(m, LAYERS)]
      key = (outer[-1] if outer else None, tuple(module.scope.path))
      if key not in seen:
        seen.add(key)
        root = stack[0][1] if stack else module  # Its own methods (e.g. encode) may be on top.
        child = next((m.name for _, m in stack if m is not root), None)
        role = child if child in VAE_ROLES else type(root).__name__
        x_shape, y_shape = tuple(call_args[0].shape), tuple(out.shape)
        calls.append((module.clone(parent=None), role, x_shape, y_shape))
    return out

  with nn.intercept_methods(interceptor):
    jax.eval_shape(fn, *args)
  # Valid taps need a (tiny) real computation: done here, outside the trace and interceptor.
  return [LayerMacs(type(m).__name__, role, layer_macs(m, x, y), _valid_macs(m, x, valid_cache))
          for m, role, x, y in calls]


def _per_network(records, valid: bool) -> dict:
  """role → NetworkMacs (forward and first layer, in call order)."""
  networks = {}
  for r in records:
    macs = r.valid_macs if valid else r.macs
    networks[r.role] = networks.get(r.role, NetworkMacs()) + NetworkMacs(macs, macs)
  return networks


def family_networks(family, image_shape) -> dict:
  """{"nominal": {role: NetworkMacs}, "valid": {...}}: per-example forward MACs of each network
  of a family, from tracing `init_state` (which runs every network forward on one example).
  GAN roles come from the family's `generator` / `discriminator` network types, else from
  init order (G first); VAE roles from the root's `encoder` / `decoder` children."""
  records = trace_layers(lambda key: family.init_state(key, 1, image_shape),
                         jax.random.PRNGKey(0))
  result = {}
  for count, valid in (("nominal", False), ("valid", True)):
    networks = _per_network(records, valid)
    if not isinstance(family, GAN) or all(role in networks for role in VAE_ROLES):
      result[count] = networks
      continue
    by_type = {type(getattr(family, role)).__name__: role for role in GAN_ROLES}
    if len(by_type) == 2 and all(name in by_type for name in networks):
      result[count] = {by_type[name]: macs for name, macs in networks.items()}
    else:  # G and D of one class, or unexpected roots: by init order.
      result[count] = dict(zip(GAN_ROLES, networks.values()))
  return result


def step_macs(config, networks: dict, n_critic: int | None = None) -> int:
  """MACs per example of one training step (one G update), from per-network forward MACs.

  Per layer: forward 1×, weight gradient 1×, input gradient 1× (skipped for a network's first
  layer when its input is data or noise). With F = forward, f = first layer:
  GAN, per D update: G forward (fakes) + D trained on 2 rows (real, fake): F_G + 2(3F_D − f_D);
    WGAN-GP adds the gradient penalty on x̂: D forward and input gradient (2F_D), then the
    weight gradient of that input gradient (2F_D): 4F_D. Only the backward pass's matmuls are
    differentiated again, since a ReLU / LeakyReLU derivative is piecewise constant (every D
    here; a smooth activation would add the forward's, 2F_D − f_D);
    × n_critic D updates; then the G update: 3F_G − f_G + 2F_D (D forward + input gradient).
  VAE: 3F_enc − f_enc + 3·k·F_dec (k = importance samples of the IWAE objective, else 1).
  """
  if config.family == "gan":
    g, d = networks["generator"], networks["discriminator"]
    n = n_critic if n_critic is not None else config.n_critic
    d_update = g.forward + 2 * (3 * d.forward - d.first)
    if config.loss == "wgan_gp":
      d_update += 4 * d.forward
    return n * d_update + 3 * g.forward - g.first + 2 * d.forward
  if config.family == "vae":
    k = config.num_importance_samples if config.objective == "iwae" else 1
    if all(role in networks for role in VAE_ROLES):
      enc, dec = networks["encoder"], networks["decoder"]
      return 3 * enc.forward - enc.first + 3 * k * dec.forward
    (net,) = networks.values()
    return 3 * net.forward - net.first
  raise ValueError(f"no FLOP count for family {config.family!r}")
