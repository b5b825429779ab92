"""The pmap path beside the sharded jit (docs/scaling.md), on 8 fake CPU devices.

The 8-device parts run in a child process (XLA_FLAGS=--xla_force_host_platform_device_count=8
must be set before JAX starts). Tolerance of "equal" across paths: rtol 1e-5, atol 1e-6 on
every float leaf (the paths sum the same gradients in a different order; ~1e-7 observed);
integer leaves (step, key, data order) exactly.

* One K-step dispatch of the seed GAN (no dropout, so every random number is shared): pmap on 8
  devices = jit on 8 devices = jit on 1 device, from the same state and global batches.
* A VAE and the dropout GAN under pmap: the same batches, per-device noise (equal to jit in
  distribution only, train/parallel.py): same shapes, finite, close losses.
* A pmap run's checkpoint resumes under jit and the reverse, ending where an all-jit run ends.
* A batch not divisible by the device count: one line, under pmap too.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, subprocess_env, xla_flags
from tests.reliability_support import RUNS, assert_one_line_error, train

EIGHT_DEVICES = xla_flags(8)
RTOL, ATOL = 1e-5, 1e-6

CHILD = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
from genimg_jax import sharding
from genimg_jax.data import embedded, placement
from genimg_jax.train import compiled, families
from tests.conftest import make_tiny_gan_config, make_tiny_vae_config
assert jax.device_count() == 8

images, labels = embedded.load("train")
images, labels = np.asarray(images[:96]), np.asarray(labels[:96])
out = {}

def run(config, parallel, devices, steps=5):
  family = families.build_family(config, images.shape[1:])
  mesh = sharding.make_mesh(jax.devices()[:devices])
  state = jax.jit(lambda k: family.init_state(k, len(images), images.shape[1:]),
                  out_shardings=sharding.replicated(mesh))(jax.random.PRNGKey(3))
  data = placement.place_resident(images, labels, mesh)
  config = config.copy_and_resolve_references()
  config.parallel = parallel
  multi = compiled.build(family, config, mesh, compiled.layout_for(family, config, mesh,
                                                                   len(images)))
  state, metrics = multi(state, data, steps)
  state, more = multi(state, data, steps)  # Two dispatches: the state goes back in.
  leaves = [np.asarray(x).tolist() for x in jax.tree_util.tree_leaves(state)]
  shardings = {str(x.sharding.spec) for x in jax.tree_util.tree_leaves(state)}
  return {"leaves": leaves, "dtypes": [str(np.asarray(x).dtype) for x in jax.tree_util.tree_leaves(state)],
          "metrics": {k: np.asarray(v).tolist() for k, v in more.items()},
          "shardings": sorted(shardings)}

EIGHT = (("jit", 8), ("pmap", 8))  # Per-device noise: only 8 vs 8 is compared (in distribution).
for name, config, paths in (
    ("gan_seed", make_tiny_gan_config(activation="relu", output_activation="sigmoid",
                                      discriminator_dropout=0.0, batch_size=16),
     (("jit", 1),) + EIGHT),
    ("gan", make_tiny_gan_config(batch_size=16), EIGHT),
    ("vae", make_tiny_vae_config(batch_size=16), EIGHT)):
  out[name] = {f"{p}{d}": run(config, p, d) for p, d in paths}
json.dump(out, open(sys.argv[1], "w"))
"""


def _child_env():
  return dict(subprocess_env(), XLA_FLAGS=EIGHT_DEVICES)


@pytest.fixture(scope="module")
def updates(tmp_path_factory):
  path = tmp_path_factory.mktemp("parallel") / "out.json"
  proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=REPO_ROOT, env=_child_env(),
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-4000:]
  return json.loads(path.read_text())


def _assert_close(a, b, what):
  assert a["dtypes"] == b["dtypes"], what
  worst = 0.0
  for i, (x, y, dtype) in enumerate(zip(a["leaves"], b["leaves"], a["dtypes"])):
    x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    if np.issubdtype(x.dtype, np.floating):
      np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f"{what}: leaf {i}")
      worst = max(worst, float(np.max(np.abs(x - y))) if x.size else 0.0)
    else:
      np.testing.assert_array_equal(x, y, err_msg=f"{what}: leaf {i}")
  return worst


@pytest.mark.slow
def test_pmap_update_equals_jit_and_one_device(updates):
  runs = updates["gan_seed"]
  worst = [_assert_close(runs["pmap8"], runs["jit8"], "pmap vs jit on 8 devices"),
           _assert_close(runs["pmap8"], runs["jit1"], "pmap on 8 vs jit on 1 device")]
  print(f"seed GAN, 10 steps: max |pmap - jit| {worst[0]:.3g}, |pmap - 1 device| {worst[1]:.3g}")
  for name in runs["pmap8"]["metrics"]:
    np.testing.assert_allclose(runs["pmap8"]["metrics"][name], runs["jit8"]["metrics"][name],
                               rtol=RTOL, atol=ATOL, err_msg=name)
  assert runs["pmap8"]["shardings"] == ["P()"]  # Leaves the call unreplicated-as-jit.


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gan", "vae"])
def test_pmap_with_per_device_noise_trains_on_the_same_batches(updates, name):
  """Dropout (gan) and the VAE's ε are drawn per device under pmap: equal only in distribution."""
  pmap, jit = updates[name]["pmap8"], updates[name]["jit8"]
  assert pmap["dtypes"] == jit["dtypes"]
  assert [np.shape(x) for x in pmap["leaves"]] == [np.shape(x) for x in jit["leaves"]]
  for name_, values in pmap["metrics"].items():
    assert np.all(np.isfinite(values)), name_
  # Step, key and data order (integer leaves) are the same: the same batches were drawn.
  for x, y, dtype in zip(pmap["leaves"], jit["leaves"], pmap["dtypes"]):
    if not dtype.startswith("float"):
      np.testing.assert_array_equal(x, y)
  loss = "d_loss" if name == "gan" else "loss"
  np.testing.assert_allclose(np.mean(pmap["metrics"][loss]), np.mean(jit["metrics"][loss]),
                             rtol=0.1)


# --------------------------------------------------------------------------- through train.py


def _run(args, workdir, env):
  result = train(args + ["--workdir", str(workdir)], env)
  assert result.returncode == 0, result.describe()


@pytest.mark.slow
def test_pmap_checkpoint_resumes_under_jit_and_the_reverse(env, tmp_path):
  from tests.reliability_support import state_leaves
  env8 = dict(env, XLA_FLAGS=EIGHT_DEVICES)
  base = RUNS["gan"][:0] + ["--model", "gan_seed", "--config.generator_hidden=(32,16)",
                            "--config.discriminator_hidden=(32,16)", "--config.latent_dim=8",
                            "--config.batch_size=16", "--config.sample_every=100000",
                            "--config.num_grid_samples=4", "--config.log_every=5",
                            "--config.checkpoint_every=10", "--config.steps_per_dispatch=5"]
  half, full = ["--config.num_steps=10"], ["--config.num_steps=20"]
  _run(base + full, tmp_path / "jit", env8)
  for first, second in (("pmap", "jit"), ("jit", "pmap")):
    workdir = tmp_path / f"{first}_then_{second}"
    _run(base + half + [f"--config.parallel={first}"], workdir, env8)
    _run(base + full + [f"--config.parallel={second}"], workdir, env8)
    (got, step), (want, _) = state_leaves(str(workdir)), state_leaves(str(tmp_path / "jit"))
    assert step == 20
    for (path, x), (_, y) in zip(got, want):
      if np.issubdtype(x.dtype, np.floating):
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL, err_msg=f"{first}→{second} {path}")
      else:
        np.testing.assert_array_equal(x, y, err_msg=f"{first}→{second} {path}")


@pytest.mark.slow
def test_pmap_batch_not_divisible_by_devices_is_one_line(env, tmp_path):
  result = train(RUNS["gan"] + ["--config.parallel=pmap", "--config.batch_size=12",
                                "--workdir", str(tmp_path / "run")],
                 dict(env, XLA_FLAGS=EIGHT_DEVICES))
  line = assert_one_line_error(result)
  assert "8 devices" in line and "12" in line, line


def test_parallel_value_is_checked(env, tmp_path):
  result = train(RUNS["gan"] + ["--config.parallel=pjit", "--workdir", str(tmp_path / "run")], env)
  line = assert_one_line_error(result)
  assert "parallel" in line and "pmap" in line, line
