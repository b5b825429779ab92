"""The evaluation package's pieces: the feature classifier (deterministic, cached by settings),
cached reference features, interpolation, best-checkpoint keeping, conditional sample scores."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genimg_jax import checkpoint as ckpt
from genimg_jax.errors import UserError
from genimg_jax.evaluation import classifier as classifier_lib
from genimg_jax.evaluation import features, interpolation
from genimg_jax.evaluation import samples as samples_lib

SETTINGS = dict(epochs=3.0)  # The default CNN; 6 steps on the toy data below.
def _toy_data(n=256, seed=0):
  """Two easy classes: a bright left half or a bright right half, 12×12 grey, uint8."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 2, n).astype(np.int32)
  images = rng.integers(0, 60, (n, 12, 12, 1)).astype(np.uint8)
  for i, y in enumerate(labels):
    images[i, :, y * 6:(y + 1) * 6] += 180
  return images, labels


def _data():
  tr, te = _toy_data(256, 0), _toy_data(64, 1)
  return (*tr, *te, 2)


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory):
  """A cache dir holding the toy data's classifier (trained once for this module)."""
  cache = str(tmp_path_factory.mktemp("toy_cache"))
  classifier_lib.get_classifier("toy", cache, settings=SETTINGS, data=_data())
  return cache


def test_classifier_learns_is_deterministic_and_is_cached_by_settings(toy_cache, tmp_path,
                                                                       capsys):
  capsys.readouterr()
  a = classifier_lib.get_classifier("toy", toy_cache, settings=SETTINGS, data=_data())
  assert "training" not in capsys.readouterr().err  # Loaded from the cache, not retrained.
  b = classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS, data=_data())
  assert "training" in capsys.readouterr().err
  assert a.test_accuracy > 0.9 and a.test_accuracy == b.test_accuracy and a.name == b.name
  for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # Same seed, same weights.
  images = _toy_data(5, 2)[0].astype(np.float32) / 255.0
  np.testing.assert_array_equal(a(images), b(images))
  assert a(images).shape == (5, classifier_lib.DEFAULT_SETTINGS["features"])
  np.testing.assert_allclose(a.probabilities(images).sum(1), 1.0, rtol=1e-9)
  settings = dict(classifier_lib.DEFAULT_SETTINGS, **SETTINGS)
  path = classifier_lib.cache_path(toy_cache, "toy", settings)
  with np.load(path) as npz:
    assert float(npz["test_accuracy"]) == a.test_accuracy
    assert json.loads(str(npz["settings"]))["epochs"] == 3.0
  other = dict(settings, seed=1)
  assert classifier_lib.cache_path(toy_cache, "toy", other) != path
  with pytest.raises(ValueError):  # A file of other settings is never taken for this one.
    classifier_lib._load(path, other)  # pylint: disable=protected-access


def test_unlabelled_data_cannot_train_the_classifier(tmp_path):
  tr_i, tr_l, te_i, te_l, _ = _data()
  with pytest.raises(UserError, match="no class labels"):
    classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS,
                                  data=(tr_i, tr_l, te_i, te_l, 0))


def test_reference_features_are_computed_once(tmp_path):
  calls = []

  class Space:
    name = "fake-space"

    def __call__(self, images):
      calls.append(len(images))
      return images.reshape(len(images), -1)[:, :3] * 2.0

  images = _toy_data(20)[0]
  first = features.reference_features(Space(), "toy", images, str(tmp_path))
  second = features.reference_features(Space(), "toy", images, str(tmp_path))
  assert calls == [20]
  np.testing.assert_array_equal(first, second)
  np.testing.assert_allclose(first, images.reshape(20, -1)[:, :3] / 255.0 * 2.0, rtol=1e-6)


def test_cache_dir_defaults(monkeypatch, tmp_path):
  monkeypatch.setenv("GENIMG_CACHE_DIR", str(tmp_path))
  assert features.resolve_cache_dir("") == str(tmp_path)
  assert features.resolve_cache_dir("/x") == "/x"
  monkeypatch.delenv("GENIMG_CACHE_DIR")
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  assert features.default_cache_dir() == os.path.expanduser("~/.cache/genimg_jax")


def test_inception_space_needs_a_weights_file(tmp_path):
  config = ml_collections.ConfigDict({"dataset": "toy", "inception_weights": ""})
  with pytest.raises(UserError, match="inception_weights"):
    features.get_space(config, "inception")
  config.inception_weights = str(tmp_path / "missing.pt")
  with pytest.raises(UserError, match="not found"):
    features.get_space(config, "inception")


def test_slerp_stays_on_the_sphere_and_hits_the_endpoints():
  e1, e2 = jnp.array([[1.0, 0.0, 0.0]]), jnp.array([[0.0, 1.0, 0.0]])
  path = interpolation.slerp(e1, e2, jnp.linspace(0, 1, 5))[0]  # [5, 3]
  np.testing.assert_allclose(path[0], e1[0], atol=1e-6)
  np.testing.assert_allclose(path[-1], e2[0], atol=1e-6)
  np.testing.assert_allclose(path[2], np.array([1, 1, 0]) / np.sqrt(2), atol=1e-6)
  np.testing.assert_allclose(jnp.linalg.norm(path, axis=-1), 1.0, atol=1e-6)
  # Parallel endpoints fall back to the straight line (no division by sin θ = 0).
  same = interpolation.slerp(e1, 2 * e1, jnp.array([0.5]))[0, 0]
  np.testing.assert_allclose(same, [1.5, 0, 0], atol=1e-6)


class _ToyFamily:
  """A conditional 'generator' whose image is its label's half lit (the toy classifier's data)."""

  latent_dim = 3

  def sample_latents(self, key, num):
    z_key, y_key = jax.random.split(key)
    return {"z": jax.random.normal(z_key, (num, 3)),
            "label": jax.random.randint(y_key, (num,), 0, 2)}

  def generate(self, state, latents):
    """Half `label` lit (state = 0) or the other half (state = 1), float [N, 12, 12, 1]."""
    lit = (jnp.arange(12)[None, :] // 6) == (latents["label"][:, None] + state) % 2  # [N, 12]
    img = jnp.broadcast_to(lit[:, None, :, None], (lit.shape[0], 12, 12, 1)).astype(jnp.float32)
    return 0.1 + 0.7 * img + 0.01 * latents["z"][:, :1, None, None]


def test_conditional_samples_are_scored_by_class(toy_cache):
  family = _ToyFamily()
  grid = interpolation.interpolation_latents(family, jax.random.PRNGKey(0), rows=3, cols=4)
  assert grid["z"].shape == (12, 3) and list(grid["label"][:4]) == [grid["label"][0]] * 4
  tr_i, tr_l, te_i, te_l, _ = _data()
  config = ml_collections.ConfigDict({"dataset": "toy", "eval_cache_dir": toy_cache,
                                      "eval_space": "classifier", "eval_classifier_epochs": 3.0})
  scorer = samples_lib.SampleScorer(config, "", te_i, te_l)
  images, labels = samples_lib.draw_samples(family, 0, 40, jax.random.PRNGKey(1), batch_size=16)
  assert images.shape == (40, 12, 12, 1) and labels.shape == (40,)
  good = scorer(images, labels)
  swapped = samples_lib.draw_samples(family, 1, 40, jax.random.PRNGKey(1), batch_size=16)[0]
  bad = scorer(swapped, labels)  # Every image shows the other class than its label.
  assert good["class_accuracy"] > 0.9 and bad["class_accuracy"] < 0.1
  assert bad["intra_class_fid"] > good["intra_class_fid"]
  assert {"fid", "kid", "precision", "recall", "density", "coverage",
          "inception_score"} <= set(good)


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
