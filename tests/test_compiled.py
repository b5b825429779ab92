"""compiled.MultiStep: the batches the engine draws for a family that takes several a step."""

import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax.train import compiled


def test_engine_draws_n_critic_distinct_real_batches_per_step():
  """With batches_per_step = 5 and 40 examples at batch 8, one step sees all 40, once each."""
  labels = np.arange(40, dtype=np.int32)
  data = {"image": jnp.zeros((40, 2, 2, 1), jnp.uint8), "label": jnp.asarray(labels)}

  class Recorder:
    batches_per_step = 5

    def train_step(self, state, batch, key):
      return state.replace(step=state.step + 1), {"label": batch["label"]}

  from genimg_jax.train.vae_step import VAEState  # Any state with step, rng and data_order.

  state = VAEState(step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(0),
                   data_order=jnp.arange(40, dtype=jnp.int32), params={}, opt_state={})
  mesh = compiled.make_mesh()
  multi = compiled.MultiStep(Recorder().train_step, 8, mesh, batches_per_step=5)
  _, metrics = multi(state, compiled.place_data(data["image"], data["label"], mesh), 2)
  seen = np.asarray(metrics["label"])  # [K=2, 5, 8]
  assert seen.shape == (2, 5, 8)
  for step in seen:
    assert sorted(step.ravel().tolist()) == labels.tolist()
  assert not np.array_equal(seen[0], seen[1])  # A fresh epoch order for the second step.
