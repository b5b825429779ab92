"""The model a run is scored as (select_model): the best-validation copy kept in the state."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax import checkpoint as ckpt
from genimg_jax.data import load_dataset
from genimg_jax.errors import UserError
from genimg_jax.train import run_config, selection
from genimg_jax.train.vae_step import VAEState
from tests.conftest import make_tiny_gan_config, make_tiny_vae_config


def _state(params, step=0, best=True):
  state = VAEState(step=jnp.asarray(step, jnp.int32), rng=jax.random.PRNGKey(0),
                   data_order=jnp.arange(3), params=params, opt_state=())
  return state.replace(best=selection.fresh_best(params)) if best else state


def test_keep_best_copies_params_only_when_the_score_improves():
  state = _state({"w": jnp.zeros(3)})
  state = selection.keep_best(state.replace(params={"w": jnp.ones(3)}, step=jnp.int32(5)),
                              jnp.float32(10.0))
  np.testing.assert_array_equal(state.best["params"]["w"], np.ones(3))
  assert int(state.best["step"]) == 5 and float(state.best["score"]) == 10.0
  for worse in (10.0, 11.0, float("nan")):  # Equal, worse and NaN never replace the best.
    kept = selection.keep_best(state.replace(params={"w": jnp.full(3, 7.0)}, step=jnp.int32(9)),
                               jnp.float32(worse))
    np.testing.assert_array_equal(kept.best["params"]["w"], np.ones(3))
    assert int(kept.best["step"]) == 5
  better = selection.keep_best(state.replace(params={"w": jnp.full(3, 2.0)}, step=jnp.int32(9)),
                               jnp.float32(9.5))
  np.testing.assert_array_equal(selection.selected(better).params["w"], np.full(3, 2.0))
  assert int(better.best["step"]) == 9


def test_keep_best_is_per_run_on_a_stacked_state():
  """Runs axis: leaves [R, ...], scores [R]; each run keeps its own best."""
  stacked = jax.vmap(lambda w: _state({"w": w}))(jnp.zeros((3, 2)))
  moved = stacked.replace(params={"w": jnp.arange(6.0).reshape(3, 2)},
                          step=jnp.full((3,), 4, jnp.int32))
  first = selection.keep_best(moved, jnp.asarray([5.0, 6.0, 7.0], jnp.float32))
  second = selection.keep_best(first.replace(params={"w": -jnp.ones((3, 2))},
                                             step=jnp.full((3,), 8, jnp.int32)),
                               jnp.asarray([6.0, 1.0, 7.5], jnp.float32))
  np.testing.assert_array_equal(second.best["step"], [4, 8, 4])
  np.testing.assert_array_equal(selection.selected(second).params["w"],
                                [[0.0, 1.0], [-1.0, -1.0], [4.0, 5.0]])
  np.testing.assert_array_equal(selection.best_steps(second), [4, 8, 4])


def test_a_state_without_a_best_copy_is_its_own_selection():
  state = _state({"w": jnp.ones(2)}, best=False)
  assert selection.selected(state) is state and selection.best_steps(state) is None


def test_fresh_best_is_finite():
  """A fresh state passes the finiteness checks of saving and of the runs axis."""
  from genimg_jax.train import runs

  assert bool(runs.all_finite(_state({"w": jnp.ones(2)})))


@pytest.mark.parametrize("overrides, words", [
    (dict(select_model="best"), "select_model"),
    (dict(select_model="best_validation", validation_every=0), "validation_every=N"),
    (dict(validation_every=-1), "validation_every"),
])
def test_bad_selection_settings_are_one_line(overrides, words):
  with pytest.raises(UserError, match=words):
    run_config.validate(make_tiny_vae_config(**overrides))


def test_gans_have_no_validation_loss():
  with pytest.raises(UserError, match="validation loss"):
    run_config.validate(make_tiny_gan_config(select_model="best_validation", validation_every=4))


def test_a_data_set_without_validation_split_is_one_line(tmp_path):
  from genimg_jax.train.loop import train_and_evaluate

  config = make_tiny_vae_config(select_model="best_validation", validation_every=4)
  with pytest.raises(UserError, match="validation"):
    train_and_evaluate(config, str(tmp_path))


# A step size at which the tiny VAE's validation −ELBO goes up and down, so that the best
# checked step is not the last one (at 0.05 it falls monotonically over 12 steps).
UNSTABLE_LR = 0.3


def _with_validation_split(monkeypatch):
  """The embedded set's test split stands in as a validation split (it has none)."""
  from genimg_jax.train import loop

  def load_split(config, split="train"):
    return load_dataset(config.dataset, "test" if split == "validation" else split,
                        seed=config.seed)

  monkeypatch.setattr(loop, "load_split", load_split)


def _best_step(curve: dict[int, float]) -> int:
  """The first step of the lowest score as the state compares them (float32; ties keep the
  earlier step)."""
  return min(sorted(curve), key=lambda step: np.float32(curve[step]))


def _validation_curve(workdir: str, run=None) -> dict[int, float]:
  curve = {}
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      record = json.loads(line)
      if selection.PREFIX + "neg_elbo" in record and record.get("run") == run:
        curve[record["step"]] = record[selection.PREFIX + "neg_elbo"]
  return curve


@pytest.mark.slow
def test_the_selected_model_is_the_best_validation_checkpoint(tmp_path, monkeypatch):
  """Validation every 2 steps with a checkpoint at each: the kept copy equals the checkpoint
  of the step with the lowest logged validation −ELBO, and evaluate scores that copy."""
  from genimg_jax import evaluate as evaluate_lib
  from genimg_jax.generate import open_run
  from genimg_jax.train.loop import train_and_evaluate

  _with_validation_split(monkeypatch)
  config = make_tiny_vae_config(select_model="best_validation", validation_every=2,
                                checkpoint_every=2, keep_checkpoints=20,
                                learning_rate=UNSTABLE_LR)
  final = train_and_evaluate(config, str(tmp_path))
  curve = _validation_curve(str(tmp_path))
  assert sorted(curve) == list(range(2, 13, 2))
  best_step = _best_step(curve)
  assert best_step != 12  # Else keeping the last model would pass this test too.
  assert final["selected_step"] == best_step
  assert final["validation_neg_elbo_best"] == pytest.approx(curve[best_step], rel=1e-6)
  _, selected_state, _, _ = open_run(str(tmp_path))
  _, at_best, _, _ = open_run(str(tmp_path), best_step)
  for a, b in zip(jax.tree_util.tree_leaves(selected_state.params),
                  jax.tree_util.tree_leaves(at_best.params)):
    np.testing.assert_array_equal(a, b)
  result = evaluate_lib.evaluate(str(tmp_path), num=20, iwae_k=0, interpolations=False)
  assert result["selected_step"] == best_step
  last = evaluate_lib.evaluate(str(tmp_path), num=20, step=12, iwae_k=0, interpolations=False)
  assert "selected_step" not in last
  if best_step != 12:
    assert last["test_neg_elbo"] != result["test_neg_elbo"]
  assert ckpt.Checkpointer(str(tmp_path), 20).latest_step() == 12
  from genimg_jax.reproduce import scoring  # The results suite scores the selected model too.

  scores = scoring.likelihood_scores(str(tmp_path), 4, 2)
  assert scores["selected_step"] == best_step and len(scores["iwae_nll_rounds"]) == 2
  assert scores["test_neg_elbo"] == pytest.approx(result["test_neg_elbo"], rel=0.05)
  assert "selected_step" not in scoring.likelihood_scores(str(tmp_path), 4, 1, step=12)


@pytest.mark.slow
def test_each_run_of_a_runs_axis_selects_its_own_best(tmp_path, monkeypatch):
  from genimg_jax.generate import open_run, select_run
  from genimg_jax.train.loop import train_and_evaluate

  _with_validation_split(monkeypatch)
  config = make_tiny_vae_config(select_model="best_validation", validation_every=2,
                                num_runs=2, learning_rate=UNSTABLE_LR)
  train_and_evaluate(config, str(tmp_path))
  _, state, _, info = open_run(str(tmp_path))
  bests = [_best_step(_validation_curve(str(tmp_path), r)) for r in (0, 1)]
  assert bests != [12, 12]  # Else keeping the last model would pass this test too.
  for run in (0, 1):
    curve = _validation_curve(str(tmp_path), run)
    best = select_run(state, info, run).best
    assert int(best["step"]) == _best_step(curve)
    assert float(best["score"]) == pytest.approx(min(curve.values()), rel=1e-6)
