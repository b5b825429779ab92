"""Checkpointer: the newest and the best (lowest score) kept, across reopening; no best without
scores."""

import jax.numpy as jnp
import pytest

from genimg_jax import checkpoint as ckpt
from genimg_jax.errors import UserError


def test_checkpoints_keep_the_newest_and_the_best_across_reopening(tmp_path):
  manager = ckpt.Checkpointer(str(tmp_path), keep=2)
  with pytest.raises(UserError, match="no checkpoint"):
    ckpt.require_checkpoint(manager, "best")
  scores = {1: None, 2: 5.0, 3: 3.0, 4: None, 5: 4.0, 6: float("nan"), 7: None}
  for step, score in scores.items():
    manager.save(step, {"x": jnp.full((2,), step)}, {"info": step}, score)
  assert manager.all_steps() == [3, 6, 7] and manager.best_step() == 3
  manager.close()
  reopened = ckpt.Checkpointer(str(tmp_path), keep=2)  # A resumed run reads the scores back.
  assert ckpt.require_checkpoint(reopened, "best") == 3
  reopened.save(8, {"x": jnp.zeros(2)}, {"info": 8}, None)
  reopened.save(9, {"x": jnp.zeros(2)}, {"info": 9}, 2.0)
  assert reopened.all_steps() == [8, 9] and reopened.best_step() == 9
  reopened.close()


def test_unscored_checkpoints_have_no_best(tmp_path):
  manager = ckpt.Checkpointer(str(tmp_path), keep=2)
  manager.save(1, {"x": jnp.zeros(2)}, {}, None)
  with pytest.raises(UserError, match="eval_every"):
    ckpt.require_checkpoint(manager, "best")
  manager.close()
