"""Runs that never lose work, part 1: interruptions, through `python train.py`.

* kill -9 at a random moment (and right after a checkpoint, and in the middle of a save), then
  the same command again: the final state equals an uninterrupted run's bit for bit.
* SIGTERM / SIGINT: exit 143 / 130, a last stderr line "stopped: ... at step S", a checkpoint
  at S; the same command resumes from it and ends bit-identical.
"""

import json
import os
import random
import re
import signal
import time

import pytest


from tests.reliability_support import (  # Fixtures env, references: conftest.
    CHECKPOINT_EVERY,
    Child,
    KILL_SEED,
    NUM_STEPS,
    RUNS,
    Reference,
    assert_bit_identical,
    checkpoint_entries,
    checkpoint_steps,
    copy_run,
    run_steps,
    state_leaves,
    train)

pytestmark = pytest.mark.slow


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


# The kill and the restart do not depend on the model (whether a family's state is whole in
# its checkpoint, BatchNorm statistics and EMA included, is test_loop.py's in-process resume
# of every kind of state): one moment each, over the resident path with one and several steps
# per dispatch, a VAE, and the streamed path.
KILL_CASES = [("gan", "random"), ("gan_k7", "after_checkpoint"), ("vae", "during_save"),
              ("gan_stream", "random")]


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
  assert step == run_steps(name)
  assert_bit_identical(leaves, ref.final, f"after the restart; {report}")
  if moment == "during_save":
    assert any("tmp" in n for n in on_disk), f"the kill missed the save: {report}"
  print(f"after the restart: {checkpoint_entries(workdir)}")


# --------------------------------------------------------------------------- SIGTERM / SIGINT


SIGNAL_CASES = [("gan", signal.SIGTERM), ("gan_stream", signal.SIGINT)]


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


def test_streamed_reference_is_the_device_resident_reference(references):
  """The run with batches streamed by Grain (data_on_device=False) and the same run with
  the set on the device end bit for bit alike; each streamed checkpoint holds Grain's iterator
  state at its step."""
  assert_bit_identical(references["gan_stream"].final, references["gan_k7"].final,
                       "streamed vs device-resident")
  workdir = references["gan_stream"].workdir
  for step in checkpoint_steps(workdir):
    path = os.path.join(workdir, "checkpoints", str(step), "data", "process_0-of-1.json")
    with open(path) as f:
      assert json.load(f) == {"next_index": step}, path
