"""Mixed precision (docs/scaling.md): `compute_dtype="bfloat16"` computes the networks'
matmuls in bf16 while parameters, optimiser states and losses stay float32, and a bf16 run of
the seed GAN config and of `dcgan` (its layers, narrowed so that 500 steps fit the CI budget on
2 CPU cores; the full-size run is in the benchmark table) trains 500 steps without a NaN/Inf.

Adding a model to BF16_RUNS is all its claim needs.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import gan_seed as gan_seed_config
from genimg_jax.config_cli import load_config
from genimg_jax import sharding
from genimg_jax.data import load_dataset, placement
from genimg_jax.train import compiled
from genimg_jax.train.families import build_family

BF16_RUNS = {  # Model → overrides: bf16 runs that must train 500 steps without NaN.
    "gan_seed": {},
    "dcgan": dict(generator_base_channels=16, discriminator_channels=(8, 16)),  # Same layers.
}


def _bf16(model: str, **overrides):
  config = load_config(model)
  config.compute_dtype = "bfloat16"
  config.update(overrides)
  return config


def _float_dtypes(tree) -> set[str]:
  return {str(x.dtype) for x in jax.tree_util.tree_leaves(tree)
          if jnp.issubdtype(x.dtype, jnp.floating)}


@pytest.mark.slow
def test_bf16_keeps_params_optimiser_state_and_losses_float32():
  config = _bf16("gan_seed")
  family = build_family(config, (28, 28, 1))
  state = family.init_state(jax.random.PRNGKey(0), 64, (28, 28, 1))
  batch = {"image": jnp.zeros((8, 28, 28, 1), jnp.uint8), "label": jnp.zeros((8,), jnp.int32)}
  new_state, metrics = jax.jit(family.train_step)(state, batch, jax.random.PRNGKey(1))
  for tree in (new_state.g_params, new_state.d_params, new_state.g_opt_state,
               new_state.d_opt_state):
    assert _float_dtypes(tree) == {"float32"}
  assert {name: str(v.dtype) for name, v in metrics.items()} == {
      name: "float32" for name in metrics}
  # ...while the matmuls really are bf16 (else the test above would prove nothing).
  jaxpr = str(jax.make_jaxpr(family.train_step)(state, batch, jax.random.PRNGKey(1)))
  assert "dot_general" in jaxpr and "bf16[8,256]" in jaxpr
  assert gan_seed_config.get_config().compute_dtype == "float32"  # bf16 stays opt-in.


@pytest.mark.slow
def test_bf16_convolutions_with_float32_batch_norm_statistics():
  config = _bf16("dcgan", **BF16_RUNS["dcgan"])
  family = build_family(config, (28, 28, 1))
  state = family.init_state(jax.random.PRNGKey(0), 64, (28, 28, 1))
  batch = {"image": jnp.zeros((8, 28, 28, 1), jnp.uint8), "label": jnp.zeros((8,), jnp.int32)}
  new_state, metrics = jax.jit(family.train_step)(state, batch, jax.random.PRNGKey(1))
  for tree in (new_state.g_params, new_state.d_params, new_state.g_opt_state,
               new_state.d_opt_state, new_state.g_stats):
    assert _float_dtypes(tree) == {"float32"}
  assert jax.tree_util.tree_leaves(new_state.g_stats)  # BatchNorm statistics exist...
  assert not jax.tree_util.tree_all(jax.tree_util.tree_map(  # ...and moved, in float32.
      lambda a, b: bool(jnp.all(a == b)), new_state.g_stats, state.g_stats))
  assert all(str(v.dtype) == "float32" for v in metrics.values())
  jaxpr = jax.make_jaxpr(family.train_step)(state, batch, jax.random.PRNGKey(1))
  conv_inputs = {str(v.aval.dtype) for eqn in jaxpr.jaxpr.eqns for sub in _all_eqns(eqn)
                 if sub.primitive.name == "conv_general_dilated" for v in sub.invars}
  assert conv_inputs == {"bfloat16"}  # Every convolution, forward and backward, in bf16.


def _all_eqns(eqn):
  """eqn and the equations of every sub-jaxpr it holds (custom_vjp, pjit, scan bodies)."""
  yield eqn
  for param in eqn.params.values():
    for sub in (param if isinstance(param, (list, tuple)) else [param]):
      inner = getattr(sub, "jaxpr", None)
      inner = getattr(inner, "jaxpr", inner)  # ClosedJaxpr → Jaxpr.
      if inner is not None and hasattr(inner, "eqns"):
        for e in inner.eqns:
          yield from _all_eqns(e)


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(BF16_RUNS))
def test_bf16_trains_500_steps_without_nan(model):
  config = _bf16(model, **BF16_RUNS[model])
  data = load_dataset(config.dataset, "train", None)
  family = build_family(config, data.image_shape, data.num_classes)
  mesh = sharding.make_mesh()
  state = jax.jit(lambda k: family.init_state(k, len(data.images), data.image_shape),
                  out_shardings=sharding.replicated(mesh))(jax.random.PRNGKey(config.seed))
  placed = placement.place_resident(data.images, data.labels, mesh)
  multi_step = compiled.build(family, config, mesh, compiled.layout_for(
      family, config, mesh, len(data.images)))
  start, chunks = time.perf_counter(), []
  for _ in range(10):  # 10 dispatches of 50 steps.
    state, metrics = multi_step(state, placed, 50)
    chunks.append(metrics)
  fetched = jax.device_get(chunks)
  seconds = time.perf_counter() - start
  assert int(state.step) == 500
  for name in fetched[0]:
    values = np.concatenate([m[name] for m in fetched])
    assert values.shape == (500,) and np.all(np.isfinite(values)), name
  assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(state)
             if jnp.issubdtype(x.dtype, jnp.floating))
  assert _float_dtypes(state) == {"float32"}
  print(f"{model} bf16: 500 steps (batch {config.batch_size}) in {seconds:.1f}s incl. compile")
