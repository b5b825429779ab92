"""Shared helpers for the tests: tiny configs (fast on 2 CPU cores) and subprocess plumbing."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from configs import gan as gan_config_module
from configs import conv_vae as conv_vae_config_module
from configs import vae as vae_config_module

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The suite is compile-bound (XLA:CPU compiling is most of its time), so every test process and
# every child it starts (set here, before JAX is imported, and inherited):
# - compiles with LLVM at -O1 and XLA's older CPU fusion emitters: a third of the compile time
#   of the zoo's steps, the same programs (every comparison in the suite is between programs
#   compiled alike; -O0 is cheaper still but changes rounding between equal programs);
# - shares one persistent compilation cache for the session (all xdist workers and children), so
#   a program compiled by one test (the same tiny model in another test, the reference run of a
#   kill -9 test) is loaded, not compiled again. Removed at the end of the session; set
#   JAX_COMPILATION_CACHE_DIR yourself to keep one between sessions.
TEST_XLA_FLAGS = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")
_OWN_CACHE = None  # The session's cache folder, in the process that made it (removed there).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _OWN_CACHE = tempfile.mkdtemp(prefix="genimg_jax_test_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def _known_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
  """The longest prefix of `flags` this jaxlib accepts (XLA aborts on a flag it does not know;
  one child start-up, in the first process only)."""
  for n in range(len(flags), 0, -1):
    env = dict(os.environ, XLA_FLAGS=" ".join(flags[:n]), JAX_PLATFORMS="cpu")
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], env=env,
                           capture_output=True, timeout=120)
    if probe.returncode == 0:
      return flags[:n]
  return ()


if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = " ".join(
      [os.environ.get("XLA_FLAGS", ""), *_known_flags(TEST_XLA_FLAGS)]).strip()


def pytest_unconfigure(config):
  if _OWN_CACHE and not hasattr(config, "workerinput"):  # The controller made it.
    shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def xla_flags(devices: int = 0) -> str:
  """XLA_FLAGS for a child: the suite's, plus `devices` fake CPU devices when given."""
  flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", os.environ["XLA_FLAGS"])
  if devices:
    flags += f" --xla_force_host_platform_device_count={devices}"
  return " ".join(flags.split())


# Tiny run settings shared by every end-to-end test: 12 steps, logs at 4/8/12, samples and
# checkpoints at 6/12, dispatches of up to 4 steps (4 does not divide 6: boundaries clip them).
TINY_RUN = dict(num_steps=12, batch_size=8, log_every=4, sample_every=6, checkpoint_every=6,
                steps_per_dispatch=4, num_grid_samples=16, keep_checkpoints=3)


def make_tiny_gan_config(**overrides):
  """configs/gan.py with small widths and the TINY_RUN schedule (plus `overrides`)."""
  config = gan_config_module.get_config()
  config.update(dict(TINY_RUN, latent_dim=8, generator_hidden=(32, 16),
                     discriminator_hidden=(32, 16)))
  config.update(overrides)
  return config


def make_tiny_vae_config(**overrides):
  """configs/vae.py with small widths and the TINY_RUN schedule (plus `overrides`)."""
  config = vae_config_module.get_config()
  config.update(dict(TINY_RUN, latent_dim=4, encoder_hidden=(32, 16), decoder_hidden=(16, 32),
                     num_recon=8, eval_batch_size=1000))
  config.update(overrides)
  return config


def make_tiny_conv_vae_config(**overrides):
  """configs/conv_vae.py with tiny conv and Dense widths and the TINY_RUN schedule."""
  config = conv_vae_config_module.get_config()
  config.update(dict(TINY_RUN, latent_dim=4, conv_channels=(4, 8), encoder_hidden=(16,),
                     decoder_hidden=(16,), num_recon=8, eval_batch_size=1000))
  config.update(overrides)
  return config


def zoo_models(family: str = "") -> list[str]:
  """Model names (the files of configs/, as `--model` takes them) of `family`, or all.

  Read from configs/ itself: a new configs/NAME.py joins every zoo test without a test edit.
  """
  from genimg_jax import config_cli  # Needs the repository root on sys.path.

  names = config_cli.available_models()
  return [n for n in names if not family or config_cli.load_config(n).family == family]


def make_tiny_zoo_config(model: str, **overrides):
  """configs/<model>.py narrowed to its architecture's SMALL widths (the keys the config has),
  with the TINY_RUN schedule (plus `overrides`)."""
  from genimg_jax import config_cli, models  # Needs the repository root on sys.path.

  config = config_cli.load_config(model)
  small = models.load(config.architecture).SMALL
  config.update(dict(TINY_RUN, **{k: v for k, v in small.items() if k in config}))
  config.update(overrides)
  return config


@pytest.fixture
def x64():
  """64-bit JAX inside the test only (the setting is restored afterwards)."""
  import jax  # Imported lazily: JAX is slow to load.

  with jax.enable_x64(True):
    yield


@pytest.fixture
def tiny_gan_config():
  return make_tiny_gan_config()


@pytest.fixture
def tiny_vae_config():
  return make_tiny_vae_config()


def subprocess_env() -> dict:
  """Environment for `python train.py` / `python -m genimg_jax.generate` children: CPU only."""
  env = dict(os.environ)
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
  env["XLA_FLAGS"] = xla_flags()
  env.pop("JAX_ENABLE_X64", None)
  return env


def run_python(args, timeout=240) -> subprocess.CompletedProcess:
  """Runs `python ARGS...` from the repository root; captures text stdout/stderr."""
  return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=subprocess_env(),
                        capture_output=True, text=True, timeout=timeout)


def _train(tmp_path_factory, name, config):
  from genimg_jax.train.loop import train_and_evaluate  # Imported lazily: JAX is slow to load.

  workdir = str(tmp_path_factory.mktemp(name))
  final = train_and_evaluate(config, workdir)
  return {"workdir": workdir, "final": final, "config": config}


@pytest.fixture(scope="session")
def trained_gan_run(tmp_path_factory):
  """A finished tiny GAN run (TINY_RUN schedule), trained in-process once per session.

  {"workdir", "final" (train_and_evaluate's dict), "config"}. Treat the folder as read-only:
  copy it before resuming or changing it.
  """
  return _train(tmp_path_factory, "trained_gan", make_tiny_gan_config())


@pytest.fixture(scope="session")
def trained_vae_run(tmp_path_factory):
  """A finished tiny VAE run, as trained_gan_run."""
  return _train(tmp_path_factory, "trained_vae", make_tiny_vae_config())


@pytest.fixture(scope="session")
def trained_conv_vae_run(tmp_path_factory):
  """A finished tiny conv VAE run, as trained_gan_run."""
  return _train(tmp_path_factory, "trained_conv_vae", make_tiny_conv_vae_config())


# Session fixtures of the reliability tests (test_e2e_resume.py, test_e2e_failures.py, ...) and
# of the evaluation tests: made once per worker.
pytest_plugins = ["tests.reliability_support", "tests.evaluation_support"]
