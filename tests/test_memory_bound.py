"""The runs axis's memory bound (train/memory_bound.py): the estimate is R × one run's state
(as a real init allocates it) plus the step's working memory, and R runs past the limit are
refused in one line, early, through train.py and in-process."""

import os
import time

import jax
import numpy as np
import pytest

from genimg_jax import sharding
from genimg_jax.data import Dataset, embedded, load_split, placement
from genimg_jax.errors import UserError
from genimg_jax.train import compiled, memory_bound, runs, sweep
from genimg_jax.train.families import build_family
from genimg_jax.train.loop import train_and_evaluate
from tests.conftest import make_tiny_zoo_config
from tests.reliability_support import QUIET, TINY_GAN, assert_one_line_error, train

TINY_LIMIT = 1e-6  # GiB: about 1 KiB, less than any run's state.


@pytest.fixture(scope="module")
def digits():
  images, labels = embedded.load("train")
  return Dataset("mnist_embedded", "train", np.asarray(images[:64]), np.asarray(labels[:64]), 10)


def estimate(config, data):
  family = build_family(config, data.image_shape, 10)
  mesh = sharding.make_mesh()
  layout = compiled.layout_for(family, config, mesh, data.num_examples)
  return family, memory_bound.estimate(family, config, mesh, layout, data)


def nbytes(tree) -> int:
  return sum(x.nbytes for x in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("overrides", [  # The sweep (its per-run values): slow tier.
    dict(num_runs=3), pytest.param(dict(num_runs=2, sweep="adam_b1=0.5,0.9"), marks=pytest.mark.slow)])
def test_the_state_estimate_is_what_a_real_init_allocates(overrides, digits):
  """R × one run's state (a real one-run init, summed leaf by leaf), its RunsState entries and
  its metrics of one dispatch; the states equal the bytes of the real R-run state."""
  config = make_tiny_zoo_config("gan", **overrides)
  family, need = estimate(config, digits)
  init = lambda key: family.init_state(key, digits.num_examples, digits.image_shape)
  one = nbytes(jax.jit(init)(runs.run_keys(0)[0]))
  plan = sweep.plan(config)
  state = jax.jit(lambda: runs.init_state(init, plan))()
  mesh = sharding.make_mesh()
  multi = compiled.build(family, config, mesh,
                         compiled.layout_for(family, config, mesh, digits.num_examples))
  placed = placement.place_resident(digits.images, digits.labels, mesh)
  _, metrics = jax.eval_shape(lambda s, d: multi.scan(s, d, config.steps_per_dispatch),
                              state, placed)
  metrics = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(metrics))
  swept = 4 * len(plan.keys)  # Each run's swept values, float32.
  assert need.state_per_run == one + 1 + 4 + swept + metrics // plan.size  # alive, frozen_at.
  assert need.state_bytes == plan.size * need.state_per_run + 4  # The program's step.
  assert need.state_bytes == nbytes(state) + metrics


def compiled_temporaries(config, data) -> int:
  """XLA's temporaries of the real R-run program (one step), compiled on a real state."""
  family = build_family(config, data.image_shape, 10)
  mesh = sharding.make_mesh()
  init = lambda key: family.init_state(key, data.num_examples, data.image_shape)
  state = jax.jit(lambda: runs.init_state(init, sweep.plan(config)))()
  multi = compiled.build(family, config, mesh,
                         compiled.layout_for(family, config, mesh, data.num_examples))
  placed = placement.place_resident(data.images, data.labels, mesh)
  return multi.function(1).lower(state, placed).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.slow  # The fast tier checks the state estimate and the one-line refusal.
@pytest.mark.parametrize("mode", ["loop", "vmap"])
def test_the_step_estimate_is_what_the_runs_program_allocates(mode, digits):
  """The step part against XLA's analysis of the real program: looped runs share one run's
  working memory (R = 8 needs what R = 4's estimate says), vmapped runs need R times one
  run's (to 5%: XLA lays out a batched program a little differently)."""
  config = lambda num_runs: make_tiny_zoo_config("gan", num_runs=num_runs, runs_vectorize=mode)
  _, need = estimate(config(4), digits)
  assert need.step_one_run > 0  # XLA:CPU reports its memory.
  assert need.total == need.state_bytes + need.step_bytes
  if mode == "loop":
    assert need.step_bytes == need.step_one_run
    assert compiled_temporaries(config(8), digits) == need.step_bytes
  else:
    assert need.step_bytes == 4 * need.step_one_run
    assert compiled_temporaries(config(4), digits) == pytest.approx(need.step_bytes, rel=0.05)


def test_a_tiny_limit_refuses_in_one_line_naming_the_estimate_and_the_limit(tmp_path):
  config = make_tiny_zoo_config("gan", num_runs=3, memory_limit_gib=TINY_LIMIT)
  _, need = estimate(config, load_split(config, "train"))  # The split training loads.
  with pytest.raises(UserError) as e:
    train_and_evaluate(config, str(tmp_path))
  message = str(e.value)
  assert "\n" not in message
  assert message.startswith(f"3 runs of gan need ≈ {memory_bound.human(need.total)} (")
  assert f"state {memory_bound.human(need.state_per_run)} per run" in message
  assert " is 1e-06 GiB (memory_limit_gib), less " in message
  assert message.endswith("lower num_runs or the sweep's size")
  assert not os.path.exists(os.path.join(tmp_path, "checkpoints"))


def test_a_limit_that_holds_the_runs_passes(digits):
  config = make_tiny_zoo_config("gan", num_runs=3, memory_limit_gib=64.0)
  family = build_family(config, digits.image_shape, 10)
  mesh = sharding.make_mesh()
  layout = compiled.layout_for(family, config, mesh, digits.num_examples)
  memory_bound.check_runs_fit(config, family, mesh, layout, digits)  # No error.
  with pytest.raises(UserError, match="memory_limit_gib must be zero"):
    config.memory_limit_gib = -1.0
    memory_bound.check_runs_fit(config, family, mesh, layout, digits)


def test_human_units():
  assert memory_bound.human(512) == "512 B"
  assert memory_bound.human(14.2 * 2**20) == "14.2 MiB"
  assert memory_bound.human(3 * 2**40) == "3.0 TiB"


@pytest.mark.slow  # A child process; the refusal itself is checked in-process above.
def test_train_py_refuses_a_tiny_limit_in_one_line(env, tmp_path):
  result = train(TINY_GAN + QUIET + ["--config.num_runs=2",
                                     f"--config.memory_limit_gib={TINY_LIMIT}",
                                     "--workdir", str(tmp_path / "run")], env)
  line = assert_one_line_error(result)
  assert "2 runs of gan need ≈" in line and "memory_limit_gib" in line, line


@pytest.mark.slow
@pytest.mark.parametrize("flags, runs_named", [
    (["--model", "gan_seed", "--config.num_runs=1000000"], "1,000,000 runs of gan_seed"),
    (["--model", "gan_seed", "--config.num_runs=400000",
      "--config.sweep=learning_rate=1e-4,2e-4,4e-4"], "1,200,000 runs of gan_seed"),
])
def test_a_million_runs_are_refused_within_30_seconds(flags, runs_named, env, tmp_path):
  """The check comes before anything is built per run: the device's free memory (the host's,
  here) refuses them in one line, without minutes of per-run set-up."""
  start = time.monotonic()
  result = train(flags + ["--workdir", str(tmp_path / "run")], env)
  seconds = time.monotonic() - start
  line = assert_one_line_error(result)
  assert line.startswith(f"error: {runs_named} need ≈") and "is free on" in line, line
  assert seconds < 30, (seconds, line)
