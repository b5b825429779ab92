"""Several processes (hosts) through JAX's multi-controller runtime, and who does what.

`--config.distributed=True` calls `jax.distributed.initialize()`: with no other key, JAX detects
the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU); else `coordinator_address`,
`num_processes`, `process_id`. Every process then runs the same program over a mesh of every
process's devices. Each process puts only its data shards on its devices
(data/placement.place_resident) and so draws only its part of each global batch. Process 0 alone holds the work directory's
lock and writes PNGs, metrics.jsonl, TensorBoard and config.json; every process takes part in
Orbax's collective saves and restores. On CPU the collectives run over gloo.

A process that dies (kill -9, a lost host) breaks the next collective of the others: gloo raises
a JaxRuntimeError ("Connection reset by peer") in their main thread within moments.
`lost_peers_reported` turns it into one line naming the process that is gone (PeerLost).
"""

import contextlib
import os
import shlex
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from genimg_jax import checkpoint as ckpt
from genimg_jax.errors import PeerLost, UserError
from genimg_jax.train import workdir_lock

ROLL_CALL_S = 20.0  # After a broken collective, how long survivors wait to hear from the others.
ROLL_CALL_KEY = "genimg_jax/broken_collective"  # Coordination-service keys of the roll call.


def initialize(config) -> None:
  """jax.distributed.initialize() when `config.distributed` (once; before any JAX computation)."""
  if not config.distributed or jax.distributed.is_initialized():
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes talk via gloo.
  kwargs = {"coordinator_address": config.coordinator_address or None,
            "num_processes": config.num_processes or None,
            "process_id": None if config.process_id < 0 else config.process_id}
  try:
    jax.distributed.initialize(**kwargs)
  except (RuntimeError, ValueError) as e:
    reason = " ".join(str(e).split())[:300]
    raise UserError(f"jax.distributed.initialize() failed ({reason}): pass "
                    f"--config.coordinator_address=HOST:PORT, --config.num_processes and "
                    f"--config.process_id, or launch under SLURM / Open MPI") from None


def is_writer() -> bool:
  """True in the process that writes the run's files (process 0)."""
  return jax.process_index() == 0


def check_sizes(config, num_devices: int, num_examples: int) -> int:
  """Resolves config.data_shards (0 ⇒ one per process) and checks the sizes; returns it."""
  if config.data_shards == 0:
    config.data_shards = jax.process_count()  # Stored resolved: a checkpoint knows its shards.
  shards, batch = config.data_shards, config.batch_size
  if config.parallel == "pmap" and jax.process_count() > 1:
    raise UserError("parallel=pmap runs in one process: use --config.parallel=jit (the "
                    "default) with --config.distributed=True")
  if batch % num_devices:
    raise UserError(f"batch_size {batch} is not divisible by the {num_devices} devices: set "
                    f"--config.batch_size to a multiple of {num_devices}")
  if num_devices % shards or shards % jax.process_count():
    raise UserError(f"data_shards {shards} must divide the {num_devices} devices and be a "
                    f"multiple of the {jax.process_count()} processes: set "
                    f"--config.data_shards={jax.process_count()}")
  if num_examples // shards < batch // shards:
    raise UserError(f"data set {config.dataset} has {num_examples} training images, fewer than "
                    f"batch_size {batch} (in {shards} shards): lower the batch size")
  return shards


@contextlib.contextmanager
def workdir_held(workdir: str):
  """Process 0 holds the work directory's lock; every process learns whether it got it."""
  lock = workdir_lock.WorkdirLock(workdir)
  error = None
  if is_writer():
    try:
      lock.acquire()
    except UserError as e:
      error = e
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
    held = multihost_utils.broadcast_one_to_all(np.int32(error is None))
    if not is_writer() and not int(held):
      error = UserError(f"work directory {workdir} is in use by another run (process 0 says "
                        f"which): wait for that run to end, or pass another --workdir")
  if error is not None:
    raise error
  try:
    yield
  finally:
    lock.release()


@contextlib.contextmanager
def lost_peers_reported(workdir: str, wait_s: float = ROLL_CALL_S):
  """Turns a collective broken by a process that stopped responding into PeerLost: one line
  naming it, the last checkpoint and the command that resumes; other errors pass unchanged.

  Who is gone is settled by a roll call: every process whose collective broke reports in the
  coordination service's key-value store, and those not heard from within `wait_s` are named.
  If all report, the error is not a missing peer and is raised as it is. (JAX's own liveness
  query, `get_live_nodes`, answers only once the service declares the process dead at its
  heartbeat timeout, and the service then aborts every survivor with a C++ fatal log; its
  "recoverable" mode, which does not abort, drops the shutdown barrier that synchronises every
  clean exit, and the query is a barrier: it waits for every live process to call it.)
  """
  try:
    yield
  except Exception as error:  # pylint: disable=broad-except  # Re-raised unless a peer is gone.
    if (not jax.distributed.is_initialized() or jax.process_count() < 2
        or _broken_collective(error) is None):
      raise
    missing = _roll_call(jax.process_index(), jax.process_count(), wait_s)
    if not missing:
      raise
    raise PeerLost(_peer_lost_message(missing, jax.process_count(), workdir,
                                      _broken_collective(error))) from None


def _broken_collective(error: BaseException) -> str | None:
  """The first line of the gloo failure behind `error` (also when wrapped: a save that fails
  in Orbax's collectives raises a ValueError, then our UserError), or None if it has none."""
  found, seen = None, set()
  while error is not None and id(error) not in seen:  # Down to the innermost: the failure.
    seen.add(id(error))
    text = str(error).strip()
    if "gloo" in text.lower():  # A JaxRuntimeError, or Orbax's ValueError with its text.
      found = text.splitlines()[0]
    error = error.__cause__ or error.__context__
  return found


def _roll_call(me: int, count: int, wait_s: float) -> list[int]:
  """Processes not heard from within `wait_s` (this one reports first); [0] when the
  coordination service, which process 0 runs, cannot be reached."""
  try:
    client = ocp.multihost.get_jax_distributed_client()
    client.key_value_set(f"{ROLL_CALL_KEY}/{me}", "here")
    deadline = time.monotonic() + wait_s
    while True:
      heard = {int(key.rsplit("/", 1)[-1]) for key, _ in client.key_value_dir_get(ROLL_CALL_KEY)}
      missing = sorted(set(range(count)) - heard)
      if not missing or time.monotonic() > deadline:
        return missing
      time.sleep(0.2)
  except (jax.errors.JaxRuntimeError, ValueError):  # The service went with process 0 (JAX's
    return [0]  # error polling then usually aborts this process first, in C++).


def _peer_lost_message(missing: list[int], count: int, workdir: str, cause: str) -> str:
  steps, folder = _checkpoint_steps(workdir), os.path.join(workdir, ckpt.CHECKPOINT_DIR)
  kept = (f"the last checkpoint is step {max(steps)} in {folder}" if steps
          else "no checkpoint was saved yet")
  names = ", ".join(map(str, missing))
  command = shlex.join(["python", *sys.argv])
  return (f"process {names} of {count} stopped responding ({cause[:200]}); {kept}: start every "
          f"process again with its same command to resume, here: {command}")


def _checkpoint_steps(workdir: str) -> list[int]:
  """Steps of the complete checkpoints on disk, read from the folder names (Orbax renames a
  checkpoint to its step when complete): opening Orbax's manager would need the dead peer."""
  try:
    names = os.listdir(os.path.join(workdir, ckpt.CHECKPOINT_DIR))
  except OSError:
    return []
  return sorted(int(name) for name in names if name.isdigit())
