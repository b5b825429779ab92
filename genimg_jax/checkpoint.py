"""Orbax checkpoints of a training state in `<workdir>/checkpoints/<step>/`.

Each checkpoint holds the whole state pytree (params, optimiser states, step, key, data order)
and a small JSON record of the run (model family, config fingerprint). Orbax writes to a
temporary folder and renames it when complete, so a crash mid-save never leaves a checkpoint
that looks whole.
"""

import contextlib
import os

import jax
import orbax.checkpoint as ocp

from genimg_jax.errors import UserError

CHECKPOINT_DIR = "checkpoints"


class Checkpointer:
  """Save / restore the latest (or a given) step; keeps the newest `keep` checkpoints."""

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR))
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False)
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=("state", "run"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state, run_info: dict) -> None:
    """Writes checkpoint `step` and waits for it; the previous ones survive a failed save."""
    previous = self.latest_step()
    try:
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), run=ocp.args.JsonSave(run_info)), force=True)
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except  # Disk full, permissions, I/O.
      kept = (f"the checkpoint of step {previous} is intact" if previous is not None
              else "no earlier checkpoint exists")
      raise UserError(f"cannot save the checkpoint of step {step} in {self.directory} "
                      f"({_reason(e)}); {kept}: free disk space or fix permissions, then run "
                      f"the same command to resume") from None

  def restore_run_info(self, step: int) -> dict:
    """The JSON record saved with checkpoint `step`."""
    with self._readable(step):
      args = ocp.args.Composite(run=ocp.args.JsonRestore())
      return self._manager.restore(step, args=args)["run"]

  def restore(self, step: int, abstract_state):
    """The state saved at `step`, placed like `abstract_state` (ShapeDtypeStructs with sharding)."""
    with self._readable(step):
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state)))
      return restored["state"]

  @contextlib.contextmanager
  def _readable(self, step: int):
    """Turns any failure to read checkpoint `step` into one line saying what to do."""
    try:
      yield
    except Exception as e:  # pylint: disable=broad-except  # Truncated or garbled files.
      path = os.path.join(self.directory, str(step))
      raise UserError(f"checkpoint {path} cannot be read ({_reason(e)}): it is corrupt or "
                      f"incomplete; move it away to resume from an earlier checkpoint, or use "
                      f"a new --workdir") from None

  def close(self) -> None:
    self._manager.close()


def _reason(error: Exception, limit: int = 300) -> str:
  """The first line of an exception, prefixed by its type; long messages keep both ends
  (TensorStore puts the path first and the cause, e.g. "No space left on device", last)."""
  lines = str(error).strip().splitlines()
  text = lines[0].split(" See full ")[0] if lines else ""  # TensorStore appends internals.
  if len(text) > limit:
    text = text[: limit // 3] + " … " + text[-(2 * limit) // 3:]
  return f"{type(error).__name__}: {text}" if text else type(error).__name__


def abstract_like(state, sharding):
  """ShapeDtypeStructs of `state` (e.g. from jax.eval_shape) carrying `sharding`."""
  return jax.tree_util.tree_map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)


def require_checkpoint(checkpointer: Checkpointer, step: int | None) -> int:
  """The step to restore: `step` if given and present, else the latest; one-line error if none."""
  steps = checkpointer.all_steps()
  if not steps:
    raise UserError(f"no checkpoint in {checkpointer.directory}: train first (python train.py "
                    f"--workdir ...) or point --workdir at a run folder")
  if step is None:
    return max(steps)
  if step not in steps:
    raise UserError(f"no checkpoint for step {step} in {checkpointer.directory}; "
                    f"available steps: {', '.join(map(str, sorted(steps)))}")
  return step
