"""config.init: each scheme's draws follow its closed form (and PyTorch's own layers when torch
is installed), every architecture's layers follow the scheme, and "flax" leaves parameters
bit-identical to Flax's defaults.

Statistical tolerances are five standard errors of the statistic at the sample's size; a
uniform maximum is "close to the bound" when it is above bound·(1 − 20/n), which n draws miss
with odds (1 − 20/n)^n < e^−20.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax import config_cli, models
from genimg_jax.errors import UserError
from genimg_jax.models import conv_layers
from genimg_jax.models import initializers as inits
from genimg_jax.train import run_config
from tests.conftest import make_tiny_zoo_config

FAN_IN, FAN_OUT = 500, 600  # The large Dense layer of the closed-form checks.
TORCH_BOUND, GLOROT_BOUND = 1 / math.sqrt(FAN_IN), math.sqrt(6 / (FAN_IN + FAN_OUT))
KERNEL_VARIANCE = {"flax": 1 / FAN_IN, "torch": TORCH_BOUND**2 / 3, "he_normal": 2 / FAN_IN,
                   "glorot_zero": GLOROT_BOUND**2 / 3}
UNIFORM_BOUND = {"torch": TORCH_BOUND, "glorot_zero": GLOROT_BOUND}  # U(±bound) kernels.


def _variance_tolerance(values) -> float:
  """Five standard errors of the sample variance: √((m4 − s⁴)/n), m4 the 4th central moment."""
  centred = values - values.mean()
  return 5 * math.sqrt((np.mean(centred**4) - np.var(values) ** 2) / values.size)


def _assert_uniform(values, bound: float) -> None:
  """Draws of U(±bound): none beyond it, the largest close to it, variance bound²/3."""
  values = np.asarray(values, np.float64).ravel()
  assert np.abs(values).max() <= bound * (1 + 1e-6)
  assert np.abs(values).max() >= bound * (1 - 20 / values.size)
  assert abs(np.var(values) - bound**2 / 3) <= _variance_tolerance(values)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("scheme", inits.SCHEMES)
def test_dense_kernel_follows_the_closed_form(scheme):
  """A 500 × 600 kernel: mean 0, the scheme's variance, uniform bounds; he_normal's share
  within one σ is the normal's 68.27%; flax's truncation bound."""
  init = inits.dense_kwargs(scheme, FAN_IN)["kernel_init"]
  kernel = np.asarray(init(jax.random.PRNGKey(1), (FAN_IN, FAN_OUT)), np.float64).ravel()
  variance = KERNEL_VARIANCE[scheme]
  assert abs(kernel.mean()) <= 5 * math.sqrt(variance / kernel.size)
  assert abs(np.var(kernel) - variance) <= _variance_tolerance(kernel)
  if scheme in UNIFORM_BOUND:
    _assert_uniform(kernel, UNIFORM_BOUND[scheme])
  if scheme == "he_normal":  # A normal, not another law of that variance.
    p = math.erf(1 / math.sqrt(2))  # P(|z| ≤ 1) for a standard normal.
    within = np.mean(np.abs(kernel) <= math.sqrt(variance))
    assert abs(within - p) <= 5 * math.sqrt(p * (1 - p) / kernel.size)
  if scheme == "flax":  # Truncated at 2 of the underlying σ, rescaled to variance 1/fan_in.
    assert np.abs(kernel).max() <= 2 * math.sqrt(variance) / 0.87962566103423978 * (1 + 1e-6)


@pytest.mark.parametrize("scheme", inits.SCHEMES)
def test_dense_bias_follows_the_scheme(scheme):
  """Biases: U(±1/√fan_in) under torch and he_normal (PyTorch's default), zeros otherwise."""
  init = inits.dense_kwargs(scheme, FAN_IN)["bias_init"]
  bias = np.asarray(init(jax.random.PRNGKey(2), (FAN_OUT,)))
  if scheme in ("torch", "he_normal"):
    _assert_uniform(bias, TORCH_BOUND)
  else:
    assert not bias.any()


def test_conv_fan_in_is_pytorchs():
  """Conv2d: in_channels × kernel area; ConvTranspose2d (weight [in, out, kh, kw], fan-in from
  dim 1): out_channels × kernel area."""
  assert inits.conv_fan_in(16, 512, (3, 5)) == 16 * 15
  assert inits.conv_fan_in(16, 512, (3, 5), transpose=True) == 512 * 15


# --------------------------------------------------------------------------- against PyTorch

# (torch layer, its arguments, our kernel shape (Dense [in, out]; conv HWIO), conv transpose?)
TORCH_LAYERS = {
    "Linear": ("Linear", (FAN_IN, FAN_OUT), (FAN_IN, FAN_OUT), None),
    "Conv2d": ("Conv2d", (16, 512, 3), (3, 3, 16, 512), False),
    "ConvTranspose2d": ("ConvTranspose2d", (16, 512, 3), (3, 3, 16, 512), True),
}


def _torch_layer(torch, scheme: str, name: str):
  """(weight, bias) of torch's layer `name` as PyTorch code draws them under `scheme`."""
  layer_class, args, _, _ = TORCH_LAYERS[name]
  torch.manual_seed(0)
  layer = getattr(torch.nn, layer_class)(*args)
  if scheme == "he_normal":  # pythae's he_init: the weights only.
    torch.nn.init.kaiming_normal_(layer.weight)
  elif scheme == "glorot_zero":  # pythae's unif_init.
    torch.nn.init.xavier_uniform_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
  return layer.weight.detach().numpy(), layer.bias.detach().numpy()


def _ours(scheme: str, name: str):
  """(kernel, bias) of our draws for layer `name`, and their uniform bounds (None: not uniform)."""
  _, _, shape, transpose = TORCH_LAYERS[name]
  area = math.prod(shape[:-2])  # 1 for a Dense kernel.
  if transpose is None:
    fan_in, kwargs = shape[0], inits.dense_kwargs(scheme, shape[0])
  else:
    fan_in = inits.conv_fan_in(shape[2], shape[3], shape[:2], transpose)
    kwargs = inits.conv_kwargs(scheme, shape[2], shape[3], shape[:2], transpose)
  kernel_bound = {"torch": 1 / math.sqrt(fan_in),
                  "glorot_zero": math.sqrt(6 / ((shape[-2] + shape[-1]) * area))}.get(scheme)
  bias_bound = 1 / math.sqrt(fan_in) if scheme in ("torch", "he_normal") else None
  key_kernel, key_bias = jax.random.split(jax.random.PRNGKey(3))
  return ((np.asarray(kwargs["kernel_init"](key_kernel, shape)), kernel_bound),
          (np.asarray(kwargs["bias_init"](key_bias, shape[-1:])), bias_bound))


@pytest.mark.parametrize("name", TORCH_LAYERS)
@pytest.mark.parametrize("scheme", ["torch", "he_normal", "glorot_zero"])
def test_draws_match_pytorchs_layers(scheme, name):
  """Our kernel and bias draws have the variance of torch's own (two-sample: five joint standard
  errors) and, where uniform, torch's draws fill exactly our bound U(±bound)."""
  torch = pytest.importorskip("torch", reason="torch is an optional dependency: pip install "
                                              "torch to compare with PyTorch's layers")
  for theirs, (ours, bound) in zip(_torch_layer(torch, scheme, name), _ours(scheme, name)):
    theirs, ours = (np.asarray(v, np.float64).ravel() for v in (theirs, ours))
    assert theirs.size == ours.size
    if not theirs.any():  # glorot_zero's biases.
      assert not ours.any()
      continue
    tolerance = math.hypot(_variance_tolerance(theirs), _variance_tolerance(ours))
    assert abs(np.var(theirs) - np.var(ours)) <= tolerance
    if bound is not None:
      _assert_uniform(theirs, bound)
      _assert_uniform(ours, bound)


# --------------------------------------------------------------------------- every architecture


BUILDERS = {"gan": "gan_networks", "vae": "vae_network"}  # Family → architecture builder.


def _architecture_cases() -> list[tuple[str, bool]]:
  """(model, conditional): the first zoo model of each (architecture, family), unconditional
  and conditional (where the architecture builds conditional networks)."""
  firsts = {}
  for model in config_cli.available_models():
    config = config_cli.load_config(model)
    firsts.setdefault((config.architecture, config.family), model)
  return [(model, conditional) for model in firsts.values() for conditional in (False, True)]


def _params(model: str, **overrides) -> dict | None:
  """Fresh parameters of configs/<model>.py at its architecture's SMALL widths, {"vae": …} or
  {"generator": …, "discriminator": …}; None when the architecture refuses the settings."""
  config = make_tiny_zoo_config(model, **overrides)
  try:
    run_config.validate(config)
  except UserError:
    return None
  side = 32 if config.image_size else 28
  image_shape = (side, side, 1)
  num_classes = 10 if config.conditional else 0
  labels = jnp.zeros((1,), jnp.int32) if num_classes else None
  images = jnp.zeros((1, *image_shape))
  key = jax.random.PRNGKey(0)
  build = models.builder(config.architecture, BUILDERS[config.family])
  try:
    networks = build(config, image_shape, num_classes)
  except ValueError:  # E.g. no conditional networks here.
    return None
  if config.family == "vae":
    return {"vae": networks.init(key, images, labels)["params"]}
  generator, discriminator = networks
  z = jnp.zeros((1, config.latent_dim))
  return {"generator": generator.init(key, z, labels, train=False)["params"],
          "discriminator": discriminator.init(key, images, labels, train=False)["params"]}


def _layers(tree, path=()):
  """[(path, {"kernel": …, "bias": …?})] of every Dense and convolution layer in a tree."""
  if "kernel" in tree:
    return [(path, tree)]
  return [item for name, sub in tree.items() if isinstance(sub, dict)
          for item in _layers(sub, path + (name,))]


def _fan_in(path, kernel) -> int:
  """PyTorch's fan-in of a kernel: Dense [in, out]; Conv HWIO; ConvTranspose HWIO (out × area)."""
  area = math.prod(kernel.shape[:-2])
  return kernel.shape[-1 if path[-1].startswith("ConvTranspose") else -2] * area


@pytest.mark.parametrize("model", ["vae", "vae_pythae"])
def test_mlp_vae_under_torch_init_draws_within_one_over_root_fan_in(model):
  """The MLP VAE (fast; every architecture below): each Dense kernel and bias lies in
  ±1/√fan_in, its largest within 20/n of the bound when n ≥ 1000 draws."""
  layers = _layers(_params(model, init="torch")["vae"])
  assert len(layers) >= 4
  for path, layer in layers:
    bound = 1 / math.sqrt(layer["kernel"].shape[0])
    for name in ("kernel", "bias"):
      values = np.abs(np.asarray(layer[name]))
      assert 0 < values.max() <= bound * (1 + 1e-6), (path, name)
      if values.size >= 1000:
        assert values.max() >= bound * (1 - 20 / values.size), (path, name)


@pytest.mark.slow  # Builds every architecture.
@pytest.mark.parametrize("scheme", [s for s in inits.SCHEMES if s != "flax"])
def test_every_architecture_follows_the_scheme(scheme):
  """Each layer's kernel lies within the scheme's bound (torch: 1/√fan_in; glorot_zero:
  √(6/(fan_in + fan_out))) and its biases within 1/√fan_in (zero under glorot_zero); over all
  layers, kernels in units of the scheme's σ have variance 1. infogan refuses the scheme."""
  standardised, built = [], set()
  for model, conditional in _architecture_cases():
    params = _params(model, conditional=conditional, init=scheme)
    if params is None:
      continue
    built.add(config_cli.load_config(model).architecture)
    for path, layer in _layers(params):
      kernel = np.asarray(layer["kernel"], np.float64)
      fan_in = _fan_in(path, kernel)
      sigma = {"torch": 1 / math.sqrt(3 * fan_in), "he_normal": math.sqrt(2 / fan_in),
               "glorot_zero": math.sqrt(2 / (math.prod(kernel.shape[:-2])
                                             * sum(kernel.shape[-2:])))}[scheme]
      standardised.append(kernel.ravel() / sigma)
      if scheme != "he_normal":  # Uniform kernels: U(±√3 σ).
        assert np.abs(kernel).max() <= math.sqrt(3) * sigma * (1 + 1e-6), (model, path)
      if "bias" in layer:
        bias = np.abs(np.asarray(layer["bias"]))
        if scheme == "glorot_zero":
          assert not bias.any(), (model, path)
        else:
          assert 0 < bias.max() <= 1 / math.sqrt(fan_in) * (1 + 1e-6), (model, path)
  assert built == set(models.available()) - {"infogan"}
  values = np.concatenate(standardised)
  assert abs(np.var(values) - 1) <= _variance_tolerance(values)


@pytest.mark.slow  # Builds every architecture twice.
def test_flax_init_is_bit_identical_to_flax_defaults(monkeypatch):
  """init="flax" gives every architecture exactly the parameters of layers built without
  initialisers (Flax's defaults: the parameters before config.init existed)."""
  cases = _architecture_cases()
  ours = [_params(model, conditional=conditional, init="flax") for model, conditional in cases]
  monkeypatch.setattr(inits, "dense_kwargs", lambda *args, **kwargs: {})
  monkeypatch.setattr(inits, "conv_kwargs", lambda *args, **kwargs: {})
  theirs = [_params(model, conditional=conditional, init="flax") for model, conditional in cases]
  assert sum(p is not None for p in ours) >= len(models.available())
  for case, a, b in zip(cases, ours, theirs):
    assert (a is None) == (b is None), case
    if a is not None:
      assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b), case
      for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y, err_msg=str(case))


@pytest.mark.parametrize("layer", [nn.Dense(5), conv_layers.Conv(5, (3, 3)),
                                   conv_layers.conv_transpose(5, (3, 3), (2, 2))])
def test_flax_kwargs_draw_what_flax_layers_draw_by_default(layer):
  """dense_kwargs / conv_kwargs("flax") are Flax's defaults: same draws for the same key."""
  x = jnp.ones((1, 4, 4, 3))
  transpose = isinstance(layer, conv_layers.ConvTranspose)
  kwargs = (inits.dense_kwargs("flax", 3) if isinstance(layer, nn.Dense)
            else inits.conv_kwargs("flax", 3, 5, (3, 3), transpose))
  plain = layer.init(jax.random.PRNGKey(4), x)
  ours = layer.clone(**kwargs).init(jax.random.PRNGKey(4), x)
  jax.tree_util.tree_map(np.testing.assert_array_equal, plain, ours)


# --------------------------------------------------------------------------- config


def test_unknown_init_is_one_line():
  with pytest.raises(UserError, match=r"^config\.init='kaiming' is not one of: flax, torch") as e:
    run_config.validate(make_tiny_zoo_config("vae", init="kaiming"))
  assert "\n" not in str(e.value)


@pytest.mark.parametrize("scheme", ["torch", "glorot_zero"])
def test_infogan_refuses_other_schemes_in_one_line(scheme):
  """compare_gan's networks keep compare_gan's initialisation."""
  with pytest.raises(UserError, match=r"^config\.init=.*follows compare_gan's") as e:
    run_config.validate(make_tiny_zoo_config("lucic_ns_gan", init=scheme))
  assert "\n" not in str(e.value)
  run_config.validate(make_tiny_zoo_config("lucic_ns_gan", init="flax"))


def test_flax_init_keeps_the_fingerprint_of_checkpoints_written_before_the_key():
  config = make_tiny_zoo_config("vae", init="flax")
  before = {k: v for k, v in config.to_dict().items() if k != "init"}
  assert run_config.fingerprint(config.to_dict()) == run_config.fingerprint(before)
  config.init = "torch"
  assert run_config.fingerprint(config.to_dict()) != run_config.fingerprint(before)
  saved = {"family": "vae", "config": before, "fingerprint": run_config.fingerprint(before)}
  with pytest.raises(UserError, match=r"init='torch' here but 'flax' in the checkpoint"):
    run_config.check_resumable(config, saved, step=10)
