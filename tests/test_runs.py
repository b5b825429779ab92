"""The runs axis (train/runs.py, train/sweep.py): R runs in one program equal R single runs.

Tolerance: the vmapped program computes the same math as R separate programs, but XLA's CPU
kernels batch the matmuls/convolutions of the R runs, which may change summation order; after
6 steps every parameter agrees to ATOL (measured differences are ≤ 1e-5; typically 1e-7).
"""

import jax
import numpy as np
import pytest

from genimg_jax import sharding
from genimg_jax.data import embedded, placement
from genimg_jax.data.resize import resize_images
from genimg_jax.errors import UserError
from genimg_jax.train import compiled, run_config, runs, sweep
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_zoo_config

ATOL = 5e-5
SIZES = (3, 3)  # Two dispatches: the scan carries the runs state across a dispatch boundary.


@pytest.fixture(scope="module")
def digits():
  """64 embedded MNIST digits at 28 px, and at 32 px for the standard CNN."""
  images, labels = embedded.load("train")
  images, labels = np.asarray(images[:64]), np.asarray(labels[:64])
  return {28: {"image": images, "label": labels},
          32: {"image": resize_images(images, 32), "label": labels}}


def train(config, data, sizes=SIZES):
  """The loop's set-up in-process: the state (a RunsState under a runs axis) after `sizes`
  dispatches, on the host, and the metrics of the last dispatch."""
  shape = data["image"].shape[1:]
  family = build_family(config, shape, 10)
  mesh = sharding.make_mesh()
  init = lambda key: family.init_state(key, len(data["image"]), shape)
  placed_like_the_loop = dict(out_shardings=sharding.replicated(mesh))  # Else a 2nd compile.
  if sweep.uses_runs_axis(config):
    state = jax.jit(lambda: runs.init_state(init, sweep.plan(config)), **placed_like_the_loop)()
  else:
    state = jax.jit(init, **placed_like_the_loop)(runs.run_keys(config.seed)[0])
  placed = placement.place_resident(data["image"], data["label"], mesh)
  multi = compiled.build(family, config, mesh,
                         compiled.layout_for(family, config, mesh, len(data["image"])))
  for k in sizes:
    state, metrics = multi(state, placed, k)
  return jax.device_get(state), jax.device_get(metrics)


def max_diff(a, b) -> float:
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


CASES = {
    "gan": ({}, 28),
    "vae": ({}, 28),
    "dcgan": ({}, 28),  # BatchNorm statistics per run.
    "wgan_gp": (dict(ema_decay=0.9), 32),  # n_critic 5, the penalty, the EMA of G.
    "iwae": ({}, 28),
}


@pytest.mark.parametrize("model", [  # The fast tier: the VAE (and the sweep tests below).
    "vae", *(pytest.param(m, marks=pytest.mark.slow) for m in ("gan", "dcgan", "wgan_gp", "iwae"))])
def test_three_runs_equal_three_single_runs(model, digits):
  overrides, size = CASES[model]
  data = digits[size]
  config = lambda **kw: make_tiny_zoo_config(model, image_size=size if size != 28 else 0,
                                              **overrides, **kw)
  many, _ = train(config(num_runs=3, seed=5), data)
  assert many.alive.all() and int(many.step) == sum(SIZES)
  for r in range(3):
    single, _ = train(config(seed=5 + r), data)
    assert max_diff(runs.select(many, r), single) < ATOL, f"run {r}"


@pytest.mark.slow
def test_runs_differ_from_each_other(digits):
  """Seeds s, s+1 give different parameters (the runs are not copies of one run)."""
  many, _ = train(make_tiny_zoo_config("gan", num_runs=2), digits[28], sizes=(1,))
  assert max_diff(runs.select(many, 0).g_params, runs.select(many, 1).g_params) > 1e-3


@pytest.mark.slow
def test_learning_rate_sweep_equals_single_runs(digits):
  rates = (1e-4, 5e-4, 2e-3)
  many, _ = train(make_tiny_zoo_config(
      "gan", sweep="learning_rate=" + ",".join(map(str, rates))), digits[28])
  np.testing.assert_allclose(many.hparams["learning_rate"], rates, rtol=1e-6)
  for r, rate in enumerate(rates):
    single, _ = train(make_tiny_zoo_config("gan", learning_rate=rate), digits[28])
    assert max_diff(runs.select(many, r), single) < ATOL, f"learning rate {rate}"


@pytest.mark.slow
def test_beta_sweep_times_seeds_orders_runs_point_major(digits):
  """sweep × num_runs: run i is point i // R with seed s + i % R (and equals that single run)."""
  config = make_tiny_zoo_config("vae", num_runs=2, seed=3, sweep="beta=0.5,2")
  plan = sweep.plan(config)
  assert plan.seeds == (3, 4, 3, 4)
  assert [p["beta"] for p in plan.points] == [0.5, 0.5, 2.0, 2.0]
  many, _ = train(config, digits[28])
  single, _ = train(make_tiny_zoo_config("vae", seed=4, beta=2.0), digits[28])
  assert max_diff(runs.select(many, 3), single) < ATOL


def test_a_diverging_run_is_frozen_and_the_others_go_on(digits):
  """An absurd learning rate drives run 1 to NaN: it keeps its last finite state, its metrics
  read NaN from then on, and runs 0 and 2 end equal to their single runs."""
  config = make_tiny_zoo_config("vae", sweep="learning_rate=1e-3,1e30,2e-3")
  many, metrics = train(config, digits[28])
  assert list(many.alive) == [True, False, True]
  frozen = int(many.frozen_at[1])
  assert 1 <= frozen <= sum(SIZES)
  assert runs.all_finite(runs.select(many, 1))  # Never poisoned: its last finite state.
  assert int(runs.select(many, 1).step) == frozen - 1
  assert np.isnan(metrics["loss"][-1, 1]) and metrics["alive"][-1, 1] == 0
  for r, rate in ((0, 1e-3), (2, 2e-3)):
    single, _ = train(make_tiny_zoo_config("vae", learning_rate=rate), digits[28])
    assert max_diff(runs.select(many, r), single) < ATOL


def test_monitor_names_a_frozen_run_once_with_its_values():
  plan = sweep.plan(make_tiny_zoo_config("gan", sweep="learning_rate=0.1,10"))
  monitor = runs.Monitor(plan, np.array([True, True]), np.zeros(2, np.int32))
  lines = monitor.update(10, np.array([[1, 1], [1, 0], [1, 0]], np.float32))
  assert lines == ["run 1 (seed 0, learning_rate=10) became non-finite at step 12: frozen at "
                   "its last finite state; the other runs go on"]
  assert monitor.update(13, np.array([[1, 0]], np.float32)) == []
  assert not monitor.all_frozen and "at step 12" in monitor.summary()


@pytest.mark.parametrize("text, message", [
    ("learning_rate", "malformed"),
    ("learning_rate=", "malformed"),
    ("learning_rate=1e-3,abc", "must be numbers"),
    ("learning_rate=1;learning_rate=2", "twice"),
    ("latent_dim=8,16", "cannot be swept"),
    ("no_such_key=1,2", "is not a setting"),
    ("adam_b1=0.5,1.5", "adam_b1"),
])
def test_bad_sweeps_are_one_line(text, message):
  with pytest.raises(UserError, match=message) as e:
    run_config.validate(make_tiny_zoo_config("gan", sweep=text))
  assert "\n" not in str(e.value)


def test_bad_num_runs_and_streamed_runs_are_one_line():
  with pytest.raises(UserError, match="num_runs"):
    run_config.validate(make_tiny_zoo_config("gan", num_runs=0))
  with pytest.raises(UserError, match="data_on_device"):
    run_config.validate(make_tiny_zoo_config("gan", num_runs=2, data_on_device=False))


def test_beta_sweep_on_iwae_is_rejected_by_the_point_check():
  with pytest.raises(UserError, match=r"sweep point .*beta"):
    run_config.validate(make_tiny_zoo_config("iwae", sweep="beta=1,2"))


def test_no_runs_axis_keeps_every_fingerprint():
  """num_runs = 1 and no sweep leave the resume fingerprint as it was before these keys."""
  config = make_tiny_zoo_config("gan")
  settings = config.to_dict()
  without = {k: v for k, v in settings.items() if k not in ("num_runs", "sweep")}
  assert run_config.fingerprint(settings) == run_config.fingerprint(without)
  config.num_runs = 2
  assert run_config.fingerprint(config.to_dict()) != run_config.fingerprint(without)


def test_resume_with_other_runs_is_one_line():
  saved = run_config.run_info(make_tiny_zoo_config("gan", num_runs=3), (28, 28, 1), 64)
  with pytest.raises(UserError, match=r"num_runs=1 here but 3 in the checkpoint"):
    run_config.check_resumable(make_tiny_zoo_config("gan"), saved, 12)
  saved = run_config.run_info(make_tiny_zoo_config("gan", sweep="learning_rate=1,2"),
                              (28, 28, 1), 64)
  with pytest.raises(UserError, match=r"sweep='learning_rate=1,3' here"):
    run_config.check_resumable(make_tiny_zoo_config("gan", sweep="learning_rate=1,3"), saved, 12)


@pytest.mark.slow
def test_vmapped_runs_equal_looped_runs(digits):
  """runs_vectorize = "vmap" (batched kernels, the accelerator default) computes what the
  CPU default "loop" computes: the same runs to ATOL."""
  config = lambda mode: make_tiny_zoo_config("gan", num_runs=2, runs_vectorize=mode,
                                             sweep="adam_b1=0.5,0.9")
  looped, _ = train(config("loop"), digits[28])
  vmapped, _ = train(config("vmap"), digits[28])
  assert max_diff(looped, vmapped) < ATOL


FOUR_DEVICES = """
import jax, numpy as np
from genimg_jax import sharding
from genimg_jax.data import embedded, placement
from genimg_jax.train import compiled, runs, sweep
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_zoo_config
images, labels = embedded.load("train")
data = {"image": np.asarray(images[:64]), "label": np.asarray(labels[:64])}
def train(devices, num_runs=3, **overrides):
  # No dropout: under pmap its masks are drawn per device (the same law, not the same numbers).
  config = make_tiny_zoo_config("gan", num_runs=num_runs, seed=7, discriminator_dropout=0.0,
                                **overrides)
  family = build_family(config, (28, 28, 1), 10)
  mesh = sharding.make_mesh(jax.devices()[:devices])
  init = lambda key: family.init_state(key, 64, (28, 28, 1))
  multi = compiled.build(family, config, mesh, compiled.layout_for(family, config, mesh, 64))
  make = lambda: runs.init_state(init, sweep.plan(config))
  shardings = (runs.state_shardings(jax.eval_shape(make), mesh, sharding.DATA_AXIS)
               if multi.spread else sharding.replicated(mesh))
  state = jax.jit(make, out_shardings=shardings)()
  placed = placement.place_resident(data["image"], data["label"], mesh)
  for k in (3, 3):
    state, _ = multi(state, placed, k)
  kernel = jax.tree_util.tree_leaves(state.runs.g_params)[0]
  spread = len({d for d in kernel.sharding.device_set}) == devices > 1 and (
      kernel.addressable_shards[0].data.shape[0] == num_runs // devices)
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))], spread
one, _ = train(1)
for name, overrides in (("jit", {}), ("pmap", {"parallel": "pmap"}),
                        ("vmap", {"runs_vectorize": "vmap"})):
  four, spread = train(4, **overrides)
  assert not spread, name
  print(name, max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(one, four)))
one, _ = train(1, num_runs=4)
four, spread = train(4, num_runs=4, runs_vectorize="vmap")
assert spread, "4 runs on 4 devices: one whole run per device"
print("spread", max(float(np.max(np.abs(a.astype(np.float64) - b))) for a, b in zip(one, four)))
"""


@pytest.mark.slow
def test_runs_over_four_fake_devices_equal_one_device():
  """R = 3 runs with each run's batch split over 4 devices (jit; pmap; vmapped runs), and R = 4
  vmapped runs spread one per device, end where the 1-device program ends (every parameter
  within ATOL)."""
  import os
  import subprocess
  import sys

  from tests.conftest import REPO_ROOT, subprocess_env, xla_flags

  env = dict(subprocess_env(), XLA_FLAGS=xla_flags(4))
  proc = subprocess.run([sys.executable, "-c", FOUR_DEVICES], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  diffs = dict(line.split() for line in proc.stdout.splitlines() if line.strip())
  assert set(diffs) == {"jit", "pmap", "vmap", "spread"}, proc.stdout
  for name, diff in diffs.items():
    assert float(diff) < ATOL, (name, diff, os.linesep + proc.stdout)


def equations(jaxpr) -> int:
  """Equations of `jaxpr` and of every jaxpr inside it (loop bodies, branches)."""
  count = 0
  for eqn in jaxpr.eqns:
    count += 1
    for value in eqn.params.values():
      for inner in value if isinstance(value, (tuple, list)) else (value,):
        inner = getattr(inner, "jaxpr", inner)  # A ClosedJaxpr's jaxpr.
        if hasattr(inner, "eqns"):
          count += equations(inner)
  return count


def test_the_looped_program_does_not_grow_with_the_runs(digits):
  """runs_vectorize = "loop": one traced body for every run, so R = 8 traces to as many
  equations as R = 2 (an unrolled loop would have four times the step's)."""
  data = digits[28]

  def size(num_runs):
    config = make_tiny_zoo_config("vae", num_runs=num_runs, runs_vectorize="loop")
    family = build_family(config, (28, 28, 1), 10)
    mesh = sharding.make_mesh()
    init = lambda key: family.init_state(key, len(data["image"]), (28, 28, 1))
    state = jax.eval_shape(lambda: runs.init_state(init, sweep.plan(config)))
    placed = placement.place_resident(data["image"], data["label"], mesh)
    multi = compiled.build(family, config, mesh, compiled.layout_for(family, config, mesh, 64))
    return equations(jax.make_jaxpr(lambda s, d: multi.scan(s, d, 2))(state, placed).jaxpr)

  assert size(2) == size(8)
