"""Shared pieces of the reliability tests (test_e2e_resume.py, test_e2e_failures.py, ...): tiny
runs of `python train.py` as subprocesses, uninterrupted reference runs (made once per session;
they keep every checkpoint, so what a kill leaves is compared with the reference's checkpoint of
the same step), checksums and bit-for-bit comparisons.

Every child pays JAX start-up and XLA compilation, so all children share a persistent
compilation cache (a session temporary folder; it changes no numbers).
The kill moments come from `random.Random`, seeded by $GENIMG_KILL_SEED (default: the clock);
the seed and every kill time are printed (`pytest -s`) and repeated in failure messages.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest

from genimg_jax.generate import open_run
from genimg_jax.train import workdir_lock
from tests.conftest import REPO_ROOT, subprocess_env

TIMEOUT_S = 300
TINY_GAN = ["--model", "gan", "--config.generator_hidden=(32,16)",
            "--config.discriminator_hidden=(32,16)", "--config.latent_dim=8"]
TINY_VAE = ["--model", "vae", "--config.encoder_hidden=(16,)", "--config.decoder_hidden=(16,)",
            "--config.latent_dim=4", "--config.num_recon=4"]
QUIET = ["--config.batch_size=8", "--config.sample_every=100000", "--config.num_grid_samples=4"]
# Long enough that a kill lands mid-run: 400 steps, 20 checkpoints (~2-3 s of training on CPU).
LONG = ["--config.num_steps=400", "--config.checkpoint_every=20", "--config.log_every=10"]
NUM_STEPS = 400


def run_steps(name: str) -> int:
  """Steps of run `name` of RUNS (its last --config.num_steps flag)."""
  flags = [f for f in RUNS[name] if f.startswith("--config.num_steps=")]
  return int(flags[-1].split("=")[1])


CHECKPOINT_EVERY = 20
RUNS = {  # name → flags of the run killed / interrupted and of its uninterrupted reference.
    "gan": TINY_GAN + QUIET + LONG + ["--config.steps_per_dispatch=1"],
    "vae": TINY_VAE + QUIET + LONG + ["--config.steps_per_dispatch=1"],
    # 7 does not divide 20 (nor log_every 10): dispatches of 7, 3, 7, 3, ...
    "gan_k7": TINY_GAN + QUIET + LONG + ["--config.steps_per_dispatch=7"],
    # gan_k7 with batches streamed by Grain: the same batches, so the same states.
    "gan_stream": TINY_GAN + QUIET + LONG + ["--config.steps_per_dispatch=7",
                                             "--config.data_on_device=False"],
}
KEEP_ALL = ["--config.keep_checkpoints=100"]  # References keep every checkpoint to compare.

KILL_SEED = int(os.environ.get("GENIMG_KILL_SEED", time.time_ns() % 2**31))


# --------------------------------------------------------------------------- plumbing


@dataclasses.dataclass
class Result:
  returncode: int
  stdout: str
  stderr: str
  seconds: float

  def describe(self) -> str:
    return (f"exit {self.returncode} after {self.seconds:.1f}s\n--- stdout (tail) ---\n"
            f"{self.stdout[-2000:]}\n--- stderr ---\n{self.stderr[-4000:]}")


class Child:
  """`python train.py ARGS` started from the repository root, output captured in files."""

  def __init__(self, args, env, file_size_limit_kib=None):
    self._out = tempfile.TemporaryFile("w+")
    self._err = tempfile.TemporaryFile("w+")
    command = [sys.executable, "train.py", *args]
    if file_size_limit_kib is not None:  # A full disk: no file may grow past the limit.
      # Set in a shell rather than a preexec_fn: forking a multithreaded (JAX) parent to run
      # Python code may deadlock. Python ignores SIGXFSZ, so a write past it fails with EFBIG.
      command = ["bash", "-c", f'ulimit -f {file_size_limit_kib} && exec "$@"', "bash", *command]
    self.start = time.monotonic()
    self.proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=self._out,
                                 stderr=self._err)

  def running(self) -> bool:
    return self.proc.poll() is None

  def wait_for(self, condition, timeout=TIMEOUT_S, interval=0.001):
    """Polls `condition()` until it is truthy (returns it) or the child exits (returns None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      value = condition()
      if value:
        return value
      if not self.running():
        return condition() or None
      time.sleep(interval)
    self.proc.kill()
    raise AssertionError(f"timed out after {timeout}s waiting on {condition}")

  def finish(self, timeout=TIMEOUT_S) -> Result:
    try:
      self.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()
    seconds = time.monotonic() - self.start
    outputs = []
    for f in (self._out, self._err):
      f.seek(0)
      outputs.append(f.read())
      f.close()
    return Result(self.proc.returncode, *outputs, seconds)


def train(args, env, **kwargs) -> Result:
  return Child(args, env, **kwargs).finish()


def in_parallel(fn, items, workers=2) -> list:
  """fn(item) for each item, `workers` at a time (2 CPU cores: JAX start-up is single-threaded)."""
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    return list(pool.map(fn, items))


def checkpoint_entries(workdir) -> list[str]:
  try:
    return sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  except FileNotFoundError:
    return []


def checkpoint_steps(workdir) -> list[int]:
  return sorted(int(n) for n in checkpoint_entries(workdir) if n.isdigit())


def tree_checksum(root) -> str:
  """sha256 over every file under `root`: sorted relative paths and their contents."""
  digest = hashlib.sha256()
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    rel_dir = os.path.relpath(dirpath, root)
    digest.update(f"D {rel_dir}\n".encode())
    for name in sorted(filenames):
      path = os.path.join(dirpath, name)
      digest.update(f"F {os.path.join(rel_dir, name)}\n".encode())
      with open(path, "rb") as f:
        digest.update(f.read())
  return digest.hexdigest()


def state_leaves(workdir, step=None):
  """[(path, numpy array)] of the state in checkpoint `step` (default latest; every run's
  under a runs axis), and the step."""
  _, state, restored_step, _ = open_run(workdir, step)
  leaves = [(jax.tree_util.keystr(path), np.asarray(leaf))
            for path, leaf in jax.tree_util.tree_leaves_with_path(state)]
  return leaves, restored_step


def assert_bit_identical(leaves, expected, context=""):
  assert [p for p, _ in leaves] == [p for p, _ in expected], context
  for (path, got), (_, want) in zip(leaves, expected):
    msg = f"{path} differs {context}"
    assert got.dtype == want.dtype and got.shape == want.shape, msg
    np.testing.assert_array_equal(got, want, err_msg=msg)
    assert got.tobytes() == want.tobytes(), msg  # Bit for bit (-0.0 vs 0.0, NaN payloads).


def assert_one_line_error(result: Result) -> str:
  """exit != 0, exactly one non-empty stderr line, no traceback anywhere; returns the line."""
  assert result.returncode not in (0, None), result.describe()
  assert "Traceback" not in result.stdout + result.stderr, result.describe()
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and lines[0].strip(), result.describe()
  return lines[0]


def nonfinite_leaves(leaves) -> list[str]:
  """Paths of floating-point leaves holding a NaN or Inf."""
  return [p for p, x in leaves if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all()]


# --------------------------------------------------------------------------- the lock


HOLD_SCRIPT = ("import sys, time; from genimg_jax.train.workdir_lock import WorkdirLock; "
               "WorkdirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)")


def lock_record(workdir) -> dict:
  with open(os.path.join(workdir, workdir_lock.LOCK_FILE)) as f:
    text = f.read()
  return json.loads(text) if text else {}


def holder_process(workdir) -> subprocess.Popen:
  """A separate process holding the lock on `workdir` (flock is per process / open file)."""
  proc = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(workdir)], cwd=REPO_ROOT,
                          env=subprocess_env(), stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def env(tmp_path_factory):
  """Children's environment: CPU, and a compilation cache shared by this module's children."""
  env = subprocess_env()
  env.pop("GENIMG_VERBOSE", None)
  env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  return env


@dataclasses.dataclass
class Reference:
  workdir: str
  window: float  # Seconds from the first checkpoint on disk to the child's exit.
  final: list  # state_leaves of the last checkpoint.


class References(dict):
  """name → Reference of one uninterrupted run of RUNS[name] (keeping every checkpoint), run on
  first use: a worker runs only the references its tests ask for, one at a time, so that the
  kill window measured (first checkpoint → exit) is that of a child alone on the machine."""

  def __init__(self, tmp_path_factory, env):
    super().__init__()
    self._tmp_path_factory, self._env = tmp_path_factory, env

  def __missing__(self, name: str) -> Reference:
    workdir = str(self._tmp_path_factory.mktemp(f"reference_{name}"))
    child = Child(RUNS[name] + KEEP_ALL + ["--workdir", workdir], self._env)
    child.wait_for(lambda: checkpoint_steps(workdir), interval=0.005)
    first_checkpoint = time.monotonic()
    result = child.finish()
    window = time.monotonic() - first_checkpoint
    assert result.returncode == 0, result.describe()
    final, step = state_leaves(workdir)
    assert step == run_steps(name)
    print(f"reference {name}: kill window {window:.2f}s, checkpoints {checkpoint_steps(workdir)}")
    self[name] = Reference(workdir, window, final)
    return self[name]


@pytest.fixture(scope="session")
def references(tmp_path_factory, env) -> References:
  return References(tmp_path_factory, env)


def copy_run(workdir, tmp_path, name="run") -> str:
  target = str(tmp_path / name)
  shutil.copytree(workdir, target)
  return target


# --------------------------------------------------------------------------- kill -9
