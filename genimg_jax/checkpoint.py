"""Orbax checkpoints of a training state in `<workdir>/checkpoints/<step>/`.

Each checkpoint holds the whole state pytree (params, optimiser states, step, key, data order)
and a small JSON record of the run (model family, config fingerprint). Orbax writes to a
temporary folder and renames it when complete, so a crash mid-save never leaves a checkpoint
that looks whole.
"""

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
    """Writes checkpoint `step` (state buffers are copied before this returns)."""
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), run=ocp.args.JsonSave(run_info)), force=True)
    self._manager.wait_until_finished()

  def restore_run_info(self, step: int) -> dict:
    return self._manager.restore(step, args=ocp.args.Composite(run=ocp.args.JsonRestore()))["run"]

  def restore(self, step: int, abstract_state):
    """The state saved at `step`, placed like `abstract_state` (ShapeDtypeStructs with sharding)."""
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"]

  def close(self) -> None:
    self._manager.close()


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
