"""Several processes (hosts) through JAX's multi-controller runtime, and who does what.

`--config.distributed=True` calls `jax.distributed.initialize()`: with no other key, JAX detects
the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU); else `coordinator_address`,
`num_processes`, `process_id`. Every process then runs the same program over a mesh of every
process's devices. Each process puts only its data shards on its devices (compiled.place_data)
and so draws only its part of each global batch. Process 0 alone holds the work directory's
lock and writes PNGs, metrics.jsonl, TensorBoard and config.json; every process takes part in
Orbax's collective saves and restores. On CPU the collectives run over gloo.
"""

import contextlib

import jax
import numpy as np

from genimg_jax.errors import UserError
from genimg_jax.train import workdir_lock


def initialize(config) -> None:
  """jax.distributed.initialize() when `config.distributed` (once; before any JAX computation)."""
  if not config.get("distributed", False) or jax.distributed.is_initialized():
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
  if config.get("data_shards", 0) == 0:
    config.data_shards = jax.process_count()  # Stored resolved: a checkpoint knows its shards.
  shards, batch = config.data_shards, config.batch_size
  if config.get("parallel", "jit") == "pmap" and jax.process_count() > 1:
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
