"""The compiled K-step function (train/compiled.py): same seed ⇒ bit-identical runs, K steps in
one scan ⇒ K single-step dispatches, another seed ⇒ other parameters and batches, one trace
per dispatch length."""

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import types


from genimg_jax import sharding
from genimg_jax.data import placement
from genimg_jax.train import compiled
from genimg_jax.train.families import build_family
from tests.conftest import (make_tiny_conv_vae_config, make_tiny_gan_config,
                            make_tiny_vae_config, make_tiny_zoo_config)
from tests.step_support import assert_trees_differ, assert_trees_equal, run, setup
from tests.step_support import mnist_subset  # noqa: F401  (a fixture)


IMAGE_SHAPE = (28, 28, 1)


DETERMINISM_CASES = {  # name → (config maker, pad the 28×28 digits to 32×32 for the 32-px CNN)
    "gan": (make_tiny_gan_config, False),
    "vae": (make_tiny_vae_config, False),
    "conv_vae": (make_tiny_conv_vae_config, False),
    "dcgan": (lambda: make_tiny_zoo_config("dcgan"), False),  # BatchNorm in G, dropout in D.
    "wgan_gp_ema": (lambda: make_tiny_zoo_config("wgan_gp", ema_decay=0.9), True),  # n_critic 5.
}


# ----------------------------------------------------------------------------- one GAN step


@pytest.fixture(scope="module", params=list(DETERMINISM_CASES))
def determinism_runs(request, mnist_subset):
  """Runs of one family from independently initialised states (one MultiStep, so each
  dispatch length compiles once): seed 0 as 10 steps in one dispatch (twice), seed 0 as ten
  1-step dispatches, seed 1 as one 10-step dispatch. 64 examples / batch 8 = 8 steps per
  epoch, so 10 steps cross an epoch boundary."""
  make_config, pad = DETERMINISM_CASES[request.param]
  config = make_config()
  subset = dict(mnist_subset)
  if pad:
    subset["image"] = np.pad(subset["image"], ((0, 0), (2, 2), (2, 2), (0, 0)))
  family, _, data, multi_step = setup(config, subset)
  image_shape = subset["image"].shape[1:]
  mesh = sharding.make_mesh()
  init = jax.jit(lambda key: family.init_state(key, 64, image_shape),
                 out_shardings=sharding.replicated(mesh))
  fresh = lambda seed: init(jax.random.PRNGKey(seed))
  params = "params" if config.family == "vae" else "g_params"
  return {
      "params": params,
      "scan": run(multi_step, fresh(0), data, [10]),
      "scan_again": run(multi_step, fresh(0), data, [10]),
      "single": run(multi_step, fresh(0), data, [1] * 10),
      "other_seed": run(multi_step, fresh(1), data, [10]),
  }


@pytest.mark.slow
def test_same_seed_bit_identical(determinism_runs):
  a, b = determinism_runs["scan"][0], determinism_runs["scan_again"][0]
  assert int(a.step) == 10
  assert_trees_equal(a, b)


@pytest.mark.slow
def test_other_seed_differs(determinism_runs):
  name = determinism_runs["params"]
  a, c = determinism_runs["scan"][0], determinism_runs["other_seed"][0]
  assert_trees_differ(getattr(a, name), getattr(c, name))
  assert not np.array_equal(a.data_order, c.data_order)  # Batches are seeded too.


@pytest.mark.slow
def test_k_steps_in_one_dispatch_equal_k_single_dispatches(determinism_runs):
  scanned, scanned_metrics = determinism_runs["scan"]
  single, single_metrics = determinism_runs["single"]
  assert int(scanned.step) == int(single.step) == 10
  assert_trees_equal(scanned, single)
  for name in scanned_metrics[0]:
    np.testing.assert_array_equal(scanned_metrics[0][name],
                                  np.concatenate([m[name] for m in single_metrics]))


@pytest.mark.slow
@pytest.mark.parametrize("make_config", [make_tiny_gan_config, make_tiny_vae_config],
                         ids=["gan", "vae"])
def test_one_trace_per_dispatch_length(make_config, mnist_subset):
  chex.clear_trace_counter()
  config = make_config()
  family = build_family(config, IMAGE_SHAPE)
  traces = []

  def counted(state, batch, key):
    traces.append(1)
    return family.train_step(state, batch, key)

  guarded = chex.assert_max_traces(counted, n=1)
  mesh = sharding.make_mesh()
  replicated = sharding.replicated(mesh)
  state = jax.jit(lambda key: family.init_state(key, 64, IMAGE_SHAPE),
                  out_shardings=replicated)(jax.random.PRNGKey(0))
  data = placement.place_resident(mnist_subset["image"], mnist_subset["label"], mesh)
  counted_family = types.SimpleNamespace(train_step=guarded, batches_per_step=1)
  multi_step = compiled.build(counted_family, config, mesh,
                              compiled.layout_for(family, config, mesh, 64))
  for _ in range(4):  # Fresh states from the previous dispatch must hit the same executable.
    state, _ = multi_step(state, data, 3)
  assert int(state.step) == 12
  assert len(traces) == 1
  # The guard is live: a new dispatch length compiles (and traces) again, which it catches.
  with pytest.raises(AssertionError, match="traced"):
    multi_step(state, data, 2)
  chex.clear_trace_counter()


# ----------------------------------------------------------------------------- learning


def test_engine_draws_n_critic_distinct_real_batches_per_step():
  """With batches_per_step = 5 and 40 examples at batch 8, one step sees all 40, once each."""
  labels = np.arange(40, dtype=np.int32)
  data = {"image": jnp.zeros((40, 2, 2, 1), jnp.uint8), "label": jnp.asarray(labels)}

  class Recorder:
    batches_per_step = 5

    def train_step(self, state, batch, key):
      return state.replace(step=state.step + 1), {"label": batch["label"]}

  from genimg_jax.train.vae_step import VAEState  # Any state with step, rng and data_order.

  state = VAEState(step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(0),
                   data_order=jnp.arange(40, dtype=jnp.int32), params={}, opt_state={})
  mesh = sharding.make_mesh()
  recorder = Recorder()
  config = ml_collections.ConfigDict(dict(batch_size=8, parallel="jit", data_on_device=True,
                                          num_runs=1, sweep="", binarize="none",
                                          runs_vectorize="auto"))
  multi = compiled.build(recorder, config, mesh, compiled.layout_for(recorder, config, mesh, 40))
  _, metrics = multi(state, placement.place_resident(data["image"], data["label"], mesh), 2)
  seen = np.asarray(metrics["label"])  # [K=2, 5, 8]
  assert seen.shape == (2, 5, 8)
  for step in seen:
    assert sorted(step.ravel().tolist()) == labels.tolist()
  assert not np.array_equal(seen[0], seen[1])  # A fresh epoch order for the second step.


def test_dynamic_binarisation_redraws_every_step_and_depends_only_on_the_state():
  """binarize = "dynamic": each step's real images are a fresh 0/255 draw (mean ≈ the grey
  level), keyed by the step, so 4 steps in one dispatch = 2 + 2 (what a resume does)."""
  grey = np.full((16, 4, 4, 1), 128, np.uint8)  # p = 128/255 per pixel.
  data = {"image": jnp.asarray(grey), "label": jnp.zeros((16,), jnp.int32)}

  class Recorder:
    batches_per_step = 1
    axis_name = None

    def train_step(self, state, batch, key):
      return state.replace(step=state.step + 1), {"image": batch["image"]}

  from genimg_jax.train.vae_step import VAEState

  fresh = lambda: VAEState(step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(0),
                           data_order=jnp.arange(16, dtype=jnp.int32), params={}, opt_state={})
  mesh = sharding.make_mesh()
  config = ml_collections.ConfigDict(dict(batch_size=16, parallel="jit", data_on_device=True,
                                          num_runs=1, sweep="", binarize="dynamic",
                                          runs_vectorize="auto"))
  recorder = Recorder()
  multi = compiled.build(recorder, config, mesh, compiled.layout_for(recorder, config, mesh, 16))
  placed = placement.place_resident(data["image"], data["label"], mesh)
  _, once = multi(fresh(), placed, 4)
  state, first = multi(fresh(), placed, 2)
  _, second = multi(state, placed, 2)
  seen = np.asarray(once["image"])  # [4, 16, 4, 4, 1]
  np.testing.assert_array_equal(seen, np.concatenate([first["image"], second["image"]]))
  assert set(np.unique(seen).tolist()) == {0, 255}
  assert abs(seen.mean() / 255 - 128 / 255) < 0.06
  for a, b in zip(seen[:-1], seen[1:]):  # Every step its own draw of the same grey rows.
    assert not np.array_equal(np.sort(a.ravel()), a.ravel()) and not np.array_equal(a, b)
