"""benchmarks/flops.py: MAC counts of tiny layers against hand counts and XLA's own count, the
seed models' per-example step counts, and the gradient-penalty formula against XLA."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import pytest

from benchmarks import flops


def _trace(module, input_shape):
  """The layer records of module.init on zeros of input_shape."""
  return flops.trace_layers(lambda key: module.init(key, jnp.zeros(input_shape)),
                            jax.random.PRNGKey(0))


def _xla_flops(fn, *args) -> float:
  analysis = jax.jit(fn).lower(*args).cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return analysis["flops"]


def test_dense_counts_batch_times_in_times_out():
  (layer,) = _trace(nn.Dense(7), (3, 5))
  assert (layer.kind, layer.macs, layer.valid_macs) == ("Dense", 3 * 5 * 7, 3 * 5 * 7)


def test_strided_conv_same_nominal_and_valid_taps():
  # 28×28×3 → Conv 8, 5×5, stride 2, SAME → 14×14×8. SAME pads 3 rows: 1 before, 2 after.
  # Output row i reads input rows 2i−1 … 2i+3: 4 valid taps at i = 0, 5 for i = 1…12, 3 at
  # i = 13 ⇒ 4 + 12·5 + 3 = 67 valid (output, tap) pairs per dimension, 67² in 2-D.
  module = nn.Conv(8, (5, 5), strides=(2, 2), padding="SAME", use_bias=False)
  (layer,) = _trace(module, (2, 28, 28, 3))
  assert layer.macs == 2 * 14 * 14 * 5 * 5 * 3 * 8  # B·H_out·W_out·kh·kw·C_in·C_out = 235,200.
  assert layer.valid_macs == 2 * 67 * 67 * 3 * 8  # = 215,472.
  x = jnp.zeros((2, 28, 28, 3))
  params = module.init(jax.random.PRNGKey(0), x)
  assert _xla_flops(module.apply, params, x) == 2 * layer.valid_macs  # XLA: 2 per valid MAC.


def test_grouped_conv_divides_by_groups():
  (layer,) = _trace(nn.Conv(8, (3, 3), padding="VALID", feature_group_count=4), (1, 6, 6, 4))
  assert layer.macs == layer.valid_macs == 1 * 4 * 4 * 3 * 3 * 4 * 8 // 4


def test_conv_transpose_stride_2_nominal_and_valid_taps():
  # 7×7×16 → ConvTranspose 8, 5×5, stride 2, SAME → 14×14×8. Nominal: every input pixel meets
  # the whole kernel, B·H_in·W_in·kh·kw·C_in·C_out. Valid: lax pads the stride-dilated input
  # (13 rows) with 3 before and 2 after; input row j lands on output rows 2j−1 … 2j+3, of which
  # 4 (j = 0), 5 (j = 1…5) and 3 (j = 6) lie in 0…13 ⇒ 4 + 5·5 + 3 = 32 per dimension.
  module = nn.ConvTranspose(8, (5, 5), strides=(2, 2), padding="SAME", use_bias=False)
  (layer,) = _trace(module, (2, 7, 7, 16))
  assert layer.macs == 2 * 7 * 7 * 5 * 5 * 16 * 8  # = 313,600.
  assert layer.valid_macs == 2 * 32 * 32 * 16 * 8  # = 262,144.
  x = jnp.zeros((2, 7, 7, 16))
  params = module.init(jax.random.PRNGKey(0), x)
  assert _xla_flops(module.apply, params, x) == 2 * layer.valid_macs


def test_project_conv_transpose_counts_as_a_transposed_conv():
  """models/conv_layers.conv_transpose (a conv over the stride-dilated input) counts as
  nn.ConvTranspose does, per input pixel (not per pixel of the dilated image)."""
  from genimg_jax.models import conv_layers
  ours = _trace(conv_layers.conv_transpose(8, (5, 5), (2, 2), use_bias=False), (2, 7, 7, 16))
  flax = _trace(nn.ConvTranspose(8, (5, 5), strides=(2, 2), padding="SAME", use_bias=False),
                (2, 7, 7, 16))
  assert [(r.macs, r.valid_macs) for r in ours] == [(r.macs, r.valid_macs) for r in flax]
  (stride_1,) = _trace(conv_layers.conv_transpose(8, (5, 5), (1, 1)), (2, 7, 7, 16))
  assert stride_1.macs == 2 * 7 * 7 * 5 * 5 * 16 * 8


class _Net(nn.Module):
  """Conv → spectral-normed Dense → Dense: the wrapped layer must be counted once."""

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(4, (3, 3), padding="VALID")(x)  # 8×8×1 → 6×6×4: 36·9·1·4 = 1,296 MACs.
    x = nn.SpectralNorm(nn.Dense(3))(x.reshape((x.shape[0], -1)), update_stats=True)  # 144·3.
    return nn.Dense(2)(x)  # 3·2.


def test_nested_and_spectral_norm_layers_counted_once_in_call_order():
  layers = _trace(_Net(), (1, 8, 8, 1))
  assert [(r.kind, r.macs) for r in layers] == [("Conv", 1296), ("Dense", 432), ("Dense", 6)]
  assert {r.role for r in layers} == {"_Net"}


def test_seed_models_per_example_step_counts():
  """Hand counts (benchmarks/README.md) from the seed's layer widths."""
  from configs import gan_seed, vae
  from genimg_jax.train.families import build_family
  g = [100, 256, 512, 1024, 784]
  d = [784, 1024, 512, 256, 1]
  fwd = lambda w: sum(a * b for a, b in zip(w[:-1], w[1:]))
  gan_hand = (fwd(g) + 2 * (3 * fwd(d) - 784 * 1024)) + (3 * fwd(g) - 100 * 256 + 2 * fwd(d))
  enc, heads, dec = 784 * 128, 128 * 64, 32 * 128 + 128 * 784
  vae_hand = 3 * (enc + heads + dec) - enc
  assert 2 * gan_hand == 31_942_656 and 2 * vae_hand == 1_077_248  # FLOPs per example.
  for module, hand in ((gan_seed, gan_hand), (vae, vae_hand)):
    config = module.get_config()
    networks = flops.family_networks(build_family(config, (28, 28, 1)), (28, 28, 1))
    assert flops.step_macs(config, networks["nominal"]) == hand
    assert flops.step_macs(config, networks["valid"]) == hand  # No convs: both counts agree.


def test_step_formula_scales_critic_updates_and_adds_the_penalty():
  networks = {"generator": flops.NetworkMacs(100, 10), "discriminator": flops.NetworkMacs(50, 5)}
  config = ml_collections.ConfigDict({"family": "gan", "n_critic": 5, "loss": "wgan_gp"})
  d_update = 100 + 2 * (3 * 50 - 5) + 4 * 50
  assert flops.step_macs(config, networks) == 5 * d_update + (3 * 100 - 10) + 2 * 50
  config.loss = "hinge"
  assert flops.step_macs(config, networks, n_critic=1) == 390 + 290 + 100


class _Critic(nn.Module):
  @nn.compact
  def __call__(self, x):
    for width in (512, 512):
      x = nn.leaky_relu(nn.Dense(width)(x), 0.2)
    return nn.Dense(1)(x)[:, 0]


def test_gradient_penalty_costs_four_forwards():
  """XLA's count of ∇_θ λ·E(‖∇_x̂ l(x̂)‖ − 1)² is 2·4F FLOPs per row (+ elementwise): forward,
  input gradient, and the two gradients of each of the input gradient's matmuls; LeakyReLU's
  derivative is piecewise constant, so the forward's matmuls are not differentiated again."""
  batch, pixels = 64, 784
  critic = _Critic()
  x = jnp.ones((batch, pixels))
  params = critic.init(jax.random.PRNGKey(0), x)

  def penalty(params, x):
    grad_x = jax.vmap(jax.grad(lambda xi: critic.apply(params, xi[None])[0]))(x)
    return 10.0 * jnp.mean((jnp.linalg.norm(grad_x, axis=1) - 1.0) ** 2)

  forward = pixels * 512 + 512 * 512 + 512
  formula = 2 * batch * 4 * forward
  ratio = _xla_flops(jax.grad(penalty), params, x) / formula
  assert 1.0 <= ratio < 1.03, ratio


def test_valid_taps_differ_from_nominal_only_at_borders():
  (valid_conv,) = _trace(nn.Conv(2, (3, 3), padding="VALID"), (1, 9, 9, 2))
  assert valid_conv.macs == valid_conv.valid_macs == 7 * 7 * 9 * 2 * 2
  (circular,) = _trace(nn.Conv(2, (3, 3), padding="CIRCULAR"), (1, 9, 9, 2))
  assert circular.macs == circular.valid_macs == 9 * 9 * 9 * 2 * 2  # Wrapped taps are real.


@pytest.mark.parametrize("kind", [nn.Conv, nn.ConvTranspose])
def test_counts_scale_linearly_with_batch(kind):
  (one,) = _trace(kind(4, (3, 3), strides=(2, 2)), (1, 10, 10, 3))
  (five,) = _trace(kind(4, (3, 3), strides=(2, 2)), (5, 10, 10, 3))
  assert (five.macs, five.valid_macs) == (5 * one.macs, 5 * one.valid_macs)
