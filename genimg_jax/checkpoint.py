"""Orbax checkpoints of a training state in `<workdir>/checkpoints/<step>/`.

Each checkpoint holds the whole state pytree (params, optimiser states, step, key, data order),
a small JSON record of the run (model family, config fingerprint) and, for streamed data
(`data_on_device=False`), each process's Grain iterator state (Grain's Orbax handler,
`data/process_<i>-of-<n>.json`). Orbax writes to a
temporary folder and renames it when complete, so a crash mid-save never leaves a checkpoint
that looks whole.

Checkpoints saved with an evaluation score (FID for GANs, test −ELBO for VAEs; lower is better)
carry it in Orbax's per-checkpoint metrics; the newest `keep` checkpoints are kept, and so is
the best-scored one. Orbax reads the scores back from disk when a manager opens the folder,
so a resumed run keeps tracking the same best.
"""

import contextlib
import os

import jax
import math

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocp_managers

from genimg_jax.errors import UserError

CHECKPOINT_DIR = "checkpoints"
SCORE = "score"  # Key of the evaluation score in a checkpoint's metrics (lower is better).


def _score(metrics) -> float:
  return float(metrics[SCORE])


class Checkpointer:
  """Save / restore the latest, best or a given step; keeps the newest `keep` checkpoints and
  the one with the lowest score."""

  def __init__(self, workdir: str, keep: int):
    self.directory = os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR))
    policy = ocp_managers.AnyPreservationPolicy([
        ocp_managers.LatestN(n=keep),
        ocp_managers.BestN(get_metric_fn=_score, reverse=True, n=1,  # Descending: keeps the min.
                           keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=False, preservation_policy=policy,
        best_fn=_score, best_mode="min")  # best_fn makes Orbax write and read the metrics.
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=("state", "run", "data"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def best_step(self) -> int | None:
    """The step with the lowest saved score; None if no checkpoint has one."""
    return self._manager.best_step()  # best_fn/best_mode: the minimum; None if none is scored.

  def save(self, step: int, state, run_info: dict, score: float | None = None,
           data_position=None) -> None:
    """Writes checkpoint `step` (with an evaluation `score`, lower is better, if given, and the
    data stream's position: an object with Grain's get_state) and waits for it; the previous
    ones survive a failed save."""
    previous = self.latest_step()
    metrics = None
    if score is not None:  # NaN/Inf (a diverged model) ranks last, never as the best.
      metrics = {SCORE: float(score) if math.isfinite(score) else 1e300}
    items = {"state": ocp.args.StandardSave(state), "run": ocp.args.JsonSave(run_info)}
    if data_position is not None:
      import grain  # pylint: disable=import-outside-toplevel  # Registers its Orbax handler.

      items["data"] = grain.checkpoint.CheckpointSave(data_position)
    try:
      self._manager.save(step, args=ocp.args.Composite(**items), force=True, metrics=metrics)
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

  def restore_data_position(self, step: int, position):
    """Fills `position` (Grain's set_state) with this process's data stream state saved at
    `step`; returns False when that checkpoint has none (a device-resident run wrote it)."""
    import grain  # pylint: disable=import-outside-toplevel  # Registers its Orbax handler.

    name = f"process_{jax.process_index()}-of-{jax.process_count()}.json"
    if not os.path.isfile(os.path.join(self.directory, str(step), "data", name)):
      return False
    with self._readable(step):
      self._manager.restore(step, args=ocp.args.Composite(
          data=grain.checkpoint.CheckpointRestore(position)))
    return True

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
  """ShapeDtypeStructs of `state` (e.g. from jax.eval_shape) carrying `sharding` (one for
  every leaf, or a pytree of them shaped like `state`)."""
  if isinstance(sharding, jax.sharding.Sharding):
    sharding = jax.tree_util.tree_map(lambda _: sharding, state)
  return jax.tree_util.tree_map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state, sharding)


def require_checkpoint(checkpointer: Checkpointer, step: int | str | None) -> int:
  """The step to restore: `step` if given and present, the best-scored one for "best", else the
  latest; one-line error if none."""
  steps = checkpointer.all_steps()
  if not steps:
    raise UserError(f"no checkpoint in {checkpointer.directory}: train first (python train.py "
                    f"--workdir ...) or point --workdir at a run folder")
  if step is None:
    return max(steps)
  if step == "best":
    best = checkpointer.best_step()
    if best is None:
      raise UserError(f"no checkpoint in {checkpointer.directory} has an evaluation score: "
                      f"train with --config.eval_every=N to keep the best, or pass --step N")
    return best
  if step not in steps:
    raise UserError(f"no checkpoint for step {step} in {checkpointer.directory}; "
                    f"available steps: {', '.join(map(str, sorted(steps)))}")
  return step
