"""Which model a run's scores come from (`config.select_model`): the last step's, or the one
with the best validation score seen every `config.validation_every` steps.

"best_validation" is what pythae's trainer does (it evaluates the validation split every epoch
and keeps a copy of the model whenever the validation loss improves; that copy is the model it
saves and scores). Here the copy lives in the family state itself, `state.best` =
{"params", "score", "step"}, so it is checkpointed with the run (a resumed run keeps the same
best, bit for bit), and under the runs axis every run keeps its own best (its leaves carry the
leading [R] axis like the rest of the state). Families that select on validation set
`selects_on_validation` and compute `validation_score(state, images_u8, labels, key, batch)`
(a VAE: the negative ELBO, β = 1, of the validation split); the others keep the last model.
"""

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("last", "best_validation")  # config.select_model values.
NO_SCORE = float(np.finfo(np.float32).max)  # A fresh best's score: finite, so checks pass.
PREFIX = "validation/"  # Scalar names in metrics.jsonl and TensorBoard.


def fresh_best(params) -> dict:
  """The best copy of a state that has not been validated yet (any score improves on it)."""
  return {"params": params, "score": jnp.asarray(NO_SCORE, jnp.float32),
          "step": jnp.asarray(-1, jnp.int32)}


def keep_best(family_state, score):
  """`family_state` with its best copy replaced by its current params where `score` (float32,
  lower is better; [R] under the runs axis) improves on the best's. NaN never improves."""
  best = family_state.best
  better = score < best["score"]  # [] or [R].

  def pick(new, old):
    return jnp.where(better.reshape(better.shape + (1,) * (new.ndim - better.ndim)), new, old)

  current = {"params": family_state.params, "score": score.astype(jnp.float32),
             "step": jnp.broadcast_to(family_state.step, better.shape).astype(jnp.int32)}
  return family_state.replace(best=jax.tree_util.tree_map(pick, current, best))


def selected(family_state):
  """The state whose params are the selected model's: the best copy when the state keeps one,
  else the state itself (the last model). Works on one run's state and on a stacked one."""
  if getattr(family_state, "best", None) is None:
    return family_state
  return family_state.replace(params=family_state.best["params"])


def best_steps(family_state) -> np.ndarray | None:
  """The step each run's selected model comes from ([] or [R]); None without a best copy."""
  if getattr(family_state, "best", None) is None:
    return None
  return np.asarray(jax.device_get(family_state.best["step"]))
