"""Runs that never lose work (SPEC §4): `kill -9`, SIGTERM / SIGINT, NaN losses and bad input,
all through `python train.py` subprocesses on CPU.

* kill -9 at a random moment (and right after a checkpoint, and in the middle of a save), then
  the same command again: the final state equals an uninterrupted run's bit for bit.
* SIGTERM / SIGINT: exit 143 / 130, a last stderr line "stopped: ... at step S", a checkpoint
  at S; the same command resumes from it and ends bit-identical.
* A NaN/Inf loss: exit 3, one line naming the step and the metric, the last good checkpoint
  kept (and finite).
* Bad input (corrupt / incompatible checkpoint, full disk, unwritable work directory, invalid
  values, batch not divisible by the device count): exit != 0, one line on stderr, no
  traceback, the checkpoints on disk untouched.

Speed: every child pays JAX start-up and XLA compilation, so the children of this module share
a persistent compilation cache (a module temporary folder; it changes no numbers), the
uninterrupted reference runs are made once (module fixtures; they keep every checkpoint, so
what a kill leaves is compared with the reference's checkpoint of the same step), and the 1- and
8-device runs go side by side. About 2.5 minutes on 2 CPU cores.

The kill moments come from `random.Random`, seeded by $GENIMG_KILL_SEED (default: the clock);
the seed and every kill time are printed (`pytest -s`) and repeated in failure messages.
"""

import concurrent.futures
import dataclasses
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest

from genimg_jax.generate import load_run
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
CHECKPOINT_EVERY = 20
RUNS = {  # name → flags of the run killed / interrupted and of its uninterrupted reference.
    "gan": TINY_GAN + QUIET + LONG + ["--config.steps_per_dispatch=1"],
    "vae": TINY_VAE + QUIET + LONG + ["--config.steps_per_dispatch=1"],
    # 7 does not divide 20 (nor log_every 10): dispatches of 7, 3, 7, 3, ...
    "gan_k7": TINY_GAN + QUIET + LONG + ["--config.steps_per_dispatch=7"],
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
  """[(path, numpy array)] of the state in checkpoint `step` (default latest), and the step."""
  _, state, restored_step = load_run(workdir, step)
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


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """Children's environment: CPU, and a compilation cache shared by this module's children."""
  env = subprocess_env()
  env.pop("GENIMG_VERBOSE", None)
  env.pop("XLA_FLAGS", None)
  env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  return env


@dataclasses.dataclass
class Reference:
  workdir: str
  window: float  # Seconds from the first checkpoint on disk to the child's exit.
  final: list  # state_leaves of the last checkpoint.


@pytest.fixture(scope="module")
def references(tmp_path_factory, env) -> dict[str, Reference]:
  """One uninterrupted run of each of RUNS (keeping every checkpoint), one at a time so that the
  kill window measured (first checkpoint → exit) is that of a child alone on the machine."""

  def run(name):
    workdir = str(tmp_path_factory.mktemp(f"reference_{name}"))
    child = Child(RUNS[name] + KEEP_ALL + ["--workdir", workdir], env)
    child.wait_for(lambda: checkpoint_steps(workdir), interval=0.005)
    first_checkpoint = time.monotonic()
    result = child.finish()
    window = time.monotonic() - first_checkpoint
    assert result.returncode == 0, result.describe()
    return workdir, window

  runs = {name: run(name) for name in RUNS}
  refs = {}
  for name, (workdir, window) in runs.items():
    final, step = state_leaves(workdir)
    assert step == NUM_STEPS
    refs[name] = Reference(workdir, window, final)
    print(f"reference {name}: kill window {window:.2f}s, "
          f"checkpoints {checkpoint_steps(workdir)}")
  return refs


def copy_run(workdir, tmp_path, name="run") -> str:
  target = str(tmp_path / name)
  shutil.copytree(workdir, target)
  return target


# --------------------------------------------------------------------------- kill -9


def _kill_moment(moment, rng, workdir, ref: Reference, child: Child) -> str:
  """Waits for the moment to SIGKILL `child`; returns what was chosen (for the report)."""
  if moment == "random":
    child.wait_for(lambda: checkpoint_steps(workdir), interval=0.005)
    delay = rng.uniform(0.0, ref.window)
    time.sleep(delay)
    return f"{delay:.3f}s after the first checkpoint appeared (window {ref.window:.2f}s)"
  target = rng.randrange(CHECKPOINT_EVERY, NUM_STEPS, CHECKPOINT_EVERY)
  if moment == "after_checkpoint":  # As soon as checkpoint `target` is complete on disk.
    child.wait_for(lambda: target in checkpoint_steps(workdir), interval=0.0005)
    return f"right after checkpoint {target} appeared"
  assert moment == "during_save"  # While a save at or after `target` is still a temp folder.
  tmp_of = lambda: [n for n in checkpoint_entries(workdir)
                    if "tmp" in n and int(n.split(".")[0]) >= target]
  for _ in range(10):
    found = child.wait_for(tmp_of, interval=0.0002)
    if not found:
      return f"never: the run ended before a save at or after step {target} was seen"
    child.proc.send_signal(signal.SIGSTOP)  # Freeze it; kill it if the save is still unfinished.
    time.sleep(0.05)
    if tmp_of():
      return f"while saving ({tmp_of()}), target step {target}"
    child.proc.send_signal(signal.SIGCONT)  # Renamed in the meantime: catch the next save.
  return "after 10 saves that finished between seeing them and stopping the run"


KILL_CASES = [("gan", "random"), ("vae", "random"), ("gan_k7", "random"),
              ("gan_k7", "after_checkpoint"), ("vae", "during_save")]


@pytest.mark.parametrize("name,moment", KILL_CASES)
def test_kill9_then_restart_is_bit_identical(name, moment, references, env, tmp_path):
  ref = references[name]
  rng = random.Random(f"{KILL_SEED}-{name}-{moment}")
  workdir = str(tmp_path / "run")
  args = RUNS[name] + ["--workdir", workdir]
  child = Child(args, env)
  chosen = _kill_moment(moment, rng, workdir, ref, child)
  child.proc.send_signal(signal.SIGKILL)
  killed = child.finish()
  on_disk = checkpoint_entries(workdir)
  mid_run = killed.returncode == -signal.SIGKILL
  report = (f"GENIMG_KILL_SEED={KILL_SEED} {name}/{moment}: SIGKILL {chosen}; "
            f"{'mid-run' if mid_run else 'the run had already finished'}; "
            f"exit {killed.returncode}; checkpoints on disk: {on_disk}")
  print(report)
  assert killed.returncode in (0, -signal.SIGKILL), report + "\n" + killed.describe()

  # What the kill left restores as the reference's checkpoint of the same step (on a copy:
  # opening a checkpoint folder may tidy it, and the restart below must see it as left).
  steps = checkpoint_steps(workdir)
  if steps:
    leaves, step = state_leaves(copy_run(workdir, tmp_path, "inspected"))
    assert step == max(steps), report
    expected, _ = state_leaves(ref.workdir, step)
    assert_bit_identical(leaves, expected, f"in checkpoint {step} left by the kill; {report}")

  restarted = train(args, env)
  assert restarted.returncode == 0, report + "\n" + restarted.describe()
  assert "Traceback" not in restarted.stderr, restarted.describe()
  leaves, step = state_leaves(workdir)
  assert step == NUM_STEPS
  assert_bit_identical(leaves, ref.final, f"after the restart; {report}")
  if moment == "during_save":
    assert any("tmp" in n for n in on_disk), f"the kill missed the save: {report}"
  print(f"after the restart: {checkpoint_entries(workdir)}")


# --------------------------------------------------------------------------- SIGTERM / SIGINT


SIGNAL_CASES = [("gan", signal.SIGTERM), ("vae", signal.SIGINT), ("gan_k7", signal.SIGINT)]


@pytest.mark.parametrize("name,signum", SIGNAL_CASES, ids=lambda v: getattr(v, "name", v))
def test_signal_saves_exits_and_resumes_bit_identical(name, signum, references, env, tmp_path):
  ref = references[name]
  workdir = str(tmp_path / "run")
  args = RUNS[name] + ["--workdir", workdir]
  child = Child(args, env)
  metrics = os.path.join(workdir, "metrics.jsonl")
  underway = lambda: checkpoint_steps(workdir) or (
      os.path.exists(metrics) and os.path.getsize(metrics) > 0)
  assert child.wait_for(underway), "the run ended before training was underway"
  assert child.running(), "the run finished before the signal could be sent"
  child.proc.send_signal(signum)
  stopped = child.finish()
  print(f"{signum.name}: {stopped.describe()}")

  assert stopped.returncode == 128 + signum, stopped.describe()  # 143 / 130.
  assert "Traceback" not in stopped.stdout + stopped.stderr, stopped.describe()
  last = stopped.stderr.splitlines()[-1]
  assert last.startswith("stopped:") and signum.name in last, stopped.describe()
  match = re.search(r"at step (\d+)", last)
  assert match, last
  step = int(match.group(1))
  assert 0 < step < NUM_STEPS
  assert step in checkpoint_steps(workdir) and step == max(checkpoint_steps(workdir)), (
      f"{last}\ncheckpoints: {checkpoint_entries(workdir)}")

  restarted = train(args, env)
  assert restarted.returncode == 0, restarted.describe()
  leaves, final_step = state_leaves(workdir)
  assert final_step == NUM_STEPS
  assert_bit_identical(leaves, ref.final, f"after {signum.name} at step {step} and a restart")


def test_sigint_during_start_up_is_clean(env, tmp_path):
  child = Child(RUNS["gan"] + ["--workdir", str(tmp_path / "run")], env)
  time.sleep(1.0)  # Importing JAX or compiling: the loop has not started.
  child.proc.send_signal(signal.SIGINT)
  result = child.finish()
  print(f"SIGINT during start-up: {result.describe()}")
  assert result.returncode in (130, -signal.SIGINT), result.describe()
  assert "Traceback" not in result.stdout + result.stderr, result.describe()


# --------------------------------------------------------------------------- NaN / Inf


NAN_RE = re.compile(r"(\w+) became (nan|inf|-inf) at step (\d+)")


def test_nan_from_the_first_steps_stops_without_a_checkpoint(env, tmp_path):
  workdir = str(tmp_path / "run")
  result = train(TINY_GAN + QUIET + ["--config.learning_rate=inf", "--config.num_steps=40",
                                     "--config.checkpoint_every=10", "--config.log_every=10",
                                     "--config.steps_per_dispatch=5", "--workdir", workdir], env)
  line = assert_one_line_error(result)
  assert result.returncode == 3, result.describe()
  match = NAN_RE.search(line)
  assert match, line
  assert int(match.group(3)) <= 2, line  # Inf step size: the very first updates blow up.
  assert "no checkpoint was saved" in line, line
  assert checkpoint_steps(workdir) == [], checkpoint_entries(workdir)


def test_nan_after_good_checkpoints_keeps_the_last_good_one(env, tmp_path):
  """The tiny VAE with Adam at 0.6 trains for a while, then its gradient overflows (step 40 on
  jax 0.10 / CPU; deterministic). The checkpoints before that stay and are finite."""
  workdir = str(tmp_path / "run")
  result = train(TINY_VAE + QUIET + ["--config.learning_rate=0.6", "--config.num_steps=600",
                                     "--config.checkpoint_every=10", "--config.log_every=10",
                                     "--config.steps_per_dispatch=1", "--workdir", workdir], env)
  line = assert_one_line_error(result)
  assert result.returncode == 3, result.describe()
  match = NAN_RE.search(line)
  assert match, line
  bad_step = int(match.group(3))
  steps = checkpoint_steps(workdir)
  assert steps and bad_step > 10, (
      f"{line}: the run must diverge after its first checkpoint for this test to mean "
      f"anything; pick another learning rate if a JAX upgrade changed where it diverges")
  assert max(steps) < bad_step, (line, steps)
  assert f"last good checkpoint, step {max(steps)}" in line, line
  leaves, step = state_leaves(workdir)
  assert step == max(steps)
  assert nonfinite_leaves(leaves) == [], f"non-finite leaves in checkpoint {step}"


def test_checkpoint_kept_after_a_nan_has_finite_params(env, tmp_path):
  workdir = str(tmp_path / "run")
  result = train(TINY_VAE + QUIET + ["--config.learning_rate=inf", "--config.num_steps=20",
                                     "--config.checkpoint_every=1", "--config.log_every=10",
                                     "--config.steps_per_dispatch=1", "--workdir", workdir], env)
  line = assert_one_line_error(result)
  assert result.returncode == 3 and NAN_RE.search(line), result.describe()
  if checkpoint_steps(workdir):
    leaves, step = state_leaves(workdir)
    assert nonfinite_leaves(leaves) == [], (
        f"{line}\ncheckpoint {step} holds non-finite values: {nonfinite_leaves(leaves)}")


# --------------------------------------------------------------------------- bad input


def test_corrupt_checkpoint_is_one_line_and_left_as_is(references, env, tmp_path):
  workdir = copy_run(references["gan"].workdir, tmp_path)
  latest = max(checkpoint_steps(workdir))
  data_dir = os.path.join(workdir, "checkpoints", str(latest), "state", "ocdbt.process_0", "d")
  names = os.listdir(data_dir)
  assert names
  for name in names:
    with open(os.path.join(data_dir, name), "r+b") as f:
      f.truncate(3)
  before = tree_checksum(os.path.join(workdir, "checkpoints"))
  args = RUNS["gan"] + KEEP_ALL + ["--workdir", workdir]
  result = train(args, env)
  line = assert_one_line_error(result)
  assert line.startswith("error:") and f"checkpoints/{latest}" in line, line
  assert tree_checksum(os.path.join(workdir, "checkpoints")) == before
  # The advice works: move the corrupt one away and the run resumes from the one before.
  shutil.move(os.path.join(workdir, "checkpoints", str(latest)), str(tmp_path / "corrupt"))
  resumed = train(args, env)
  assert resumed.returncode == 0, resumed.describe()
  leaves, step = state_leaves(workdir)
  assert step == NUM_STEPS
  assert_bit_identical(leaves, references["gan"].final, "after moving the corrupt one away")


@pytest.mark.parametrize("case", ["latent_dim", "vae_as_gan"])
def test_incompatible_checkpoint_is_one_line_naming_the_keys(case, references, env, tmp_path):
  if case == "latent_dim":
    workdir = copy_run(references["gan"].workdir, tmp_path)
    args = RUNS["gan"] + ["--config.latent_dim=16"]
    expected = ["latent_dim", "16", "8"]
  else:
    workdir = copy_run(references["vae"].workdir, tmp_path)
    args = RUNS["gan"]
    expected = ["from a vae run", "not gan", "--model vae"]
  before = tree_checksum(os.path.join(workdir, "checkpoints"))
  line = assert_one_line_error(train(args + ["--workdir", workdir], env))
  for text in expected:
    assert text in line, line
  assert tree_checksum(os.path.join(workdir, "checkpoints")) == before


FSIZE_LIMIT = 512 * 1024  # The default VAE's state is ~2.4 MB in data files of ~0.6-0.8 MB.
FULL_DISK_VAE = ["--model", "vae", "--config.batch_size=8", "--config.checkpoint_every=10",
                 "--config.log_every=10", "--config.steps_per_dispatch=10",
                 "--config.sample_every=100000", "--config.num_grid_samples=4",
                 "--config.num_recon=4"]


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory, env):
  """Checkpoint 10 of the default VAE, then a resume to 20 that cannot write files over 512 KiB,
  then a plain restart."""
  workdir = str(tmp_path_factory.mktemp("full_disk") / "run")
  first = train(FULL_DISK_VAE + ["--config.num_steps=10", "--workdir", workdir], env)
  assert first.returncode == 0, first.describe()
  assert checkpoint_steps(workdir) == [10]
  checkpoint_10 = os.path.join(workdir, "checkpoints", "10")
  sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(checkpoint_10) for f in fs]
  assert max(sizes) > FSIZE_LIMIT, "the checkpoint fits under the limit: the test means nothing"
  before = tree_checksum(checkpoint_10)
  args = FULL_DISK_VAE + ["--config.num_steps=20", "--workdir", workdir]
  limited = train(args, env, file_size_limit_kib=FSIZE_LIMIT // 1024)
  after = tree_checksum(checkpoint_10)
  left = checkpoint_entries(workdir)
  restarted = train(args, env)
  print(f"full disk: {limited.describe()}\nleft: {left}")
  return dict(workdir=workdir, limited=limited, intact=before == after, left=left,
              restarted=restarted)


def test_full_disk_keeps_the_checkpoint_and_a_restart_resumes(full_disk):
  limited = full_disk["limited"]
  assert limited.returncode == 2, limited.describe()
  last = limited.stderr.splitlines()[-1]
  assert last.startswith("error: cannot save the checkpoint of step 20"), limited.describe()
  assert "the checkpoint of step 10 is intact" in last, last
  assert full_disk["intact"], "checkpoint 10 changed"
  assert "20" not in full_disk["left"], full_disk["left"]  # No half checkpoint looks whole.
  restarted = full_disk["restarted"]
  assert restarted.returncode == 0, restarted.describe()
  assert "step 10/20" not in restarted.stdout, "the restart started over instead of resuming"
  assert "step 20/20" in restarted.stdout, restarted.describe()
  _, step = state_leaves(full_disk["workdir"])
  assert step == 20


def test_full_disk_is_one_line(full_disk):
  assert_one_line_error(full_disk["limited"])


def test_unwritable_workdir_is_one_line(env, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("a regular file, not a folder")
  workdir = str(blocker / "run")
  line = assert_one_line_error(train(RUNS["gan"] + ["--workdir", workdir], env))
  assert workdir in line and "not writable" in line, line


@pytest.mark.parametrize("flag,key", [("--config.num_steps=0", "num_steps"),
                                      ("--config.batch_size=-1", "batch_size")])
def test_invalid_value_is_one_line(flag, key, env, tmp_path):
  workdir = str(tmp_path / "run")
  line = assert_one_line_error(train(RUNS["gan"] + [flag, "--workdir", workdir], env))
  assert key in line and flag.split("=")[1] in line, line
  assert checkpoint_steps(workdir) == []


# --------------------------------------------------------------------------- several devices


EIGHT_DEVICES = "--xla_force_host_platform_device_count=8"


def test_batch_not_divisible_by_devices_is_one_line(env, tmp_path):
  result = train(RUNS["gan"] + ["--config.batch_size=12", "--workdir", str(tmp_path / "run")],
                 dict(env, XLA_FLAGS=EIGHT_DEVICES))
  line = assert_one_line_error(result)
  assert "8 devices" in line and "12" in line, line


def test_data_parallel_on_8_devices_matches_1_device(env, tmp_path):
  args = TINY_GAN + QUIET + ["--config.batch_size=16", "--config.num_steps=30",
                             "--config.log_every=10", "--config.checkpoint_every=30",
                             "--config.steps_per_dispatch=10"]

  def run(devices):
    workdir = str(tmp_path / f"devices_{devices}")
    child_env = dict(env, XLA_FLAGS=EIGHT_DEVICES) if devices == 8 else env
    return workdir, train(args + ["--workdir", workdir], child_env)

  (one, one_result), (eight, eight_result) = in_parallel(run, [1, 8])
  assert one_result.returncode == 0, one_result.describe()
  assert eight_result.returncode == 0, eight_result.describe()
  (one_leaves, _), (eight_leaves, _) = state_leaves(one), state_leaves(eight)
  diffs = {p: float(np.max(np.abs(x.astype(np.float64) - y))) if x.size else 0.0
           for (p, x), (_, y) in zip(one_leaves, eight_leaves)}
  print(f"8 vs 1 device: max |difference| {max(diffs.values()):.3g}")
  for (path, x), (_, y) in zip(eight_leaves, one_leaves):
    if np.issubdtype(x.dtype, np.floating):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=path)
    else:
      np.testing.assert_array_equal(x, y, err_msg=path)  # step, rng, data order.
