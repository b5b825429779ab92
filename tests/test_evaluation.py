"""The evaluation package's pieces: the feature classifier (deterministic, cached by settings,
a damaged cache retrained), cached reference features, interpolation, best-checkpoint keeping,
conditional sample scores, the one sampler, and messages naming the running CLI's flags."""

import json
import os
import re
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import common
from genimg_jax import checkpoint as ckpt
from genimg_jax import evaluate
from genimg_jax.errors import UserError, flag_names
from genimg_jax.evaluation import classifier as classifier_lib
from genimg_jax.evaluation import features, interpolation
from genimg_jax.evaluation import samples as samples_lib
from genimg_jax.evaluation.inception_weights import load_params

SETTINGS = dict(epochs=3.0)  # The default CNN; 6 steps on the toy data below.


def _config(**keys) -> ml_collections.ConfigDict:
  """A resolved config (every common key) of the toy data set, with `keys` set."""
  config = common.get_config()
  config.update(dict(dict(dataset="toy"), **keys))
  return config


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
  config = _config(inception_weights="")
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
  config = _config(eval_cache_dir=toy_cache, eval_space="classifier", eval_classifier_epochs=3.0)
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


def test_a_damaged_classifier_cache_is_retrained_and_replaced(toy_cache, tmp_path, capsys):
  settings = dict(classifier_lib.DEFAULT_SETTINGS, **SETTINGS)
  intact = classifier_lib.cache_path(toy_cache, "toy", settings)
  path = classifier_lib.cache_path(str(tmp_path), "toy", settings)
  os.makedirs(os.path.dirname(path))
  shutil.copy(intact, path)
  with open(path, "r+b") as f:
    f.truncate(5000)
  capsys.readouterr()
  retrained = classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS, data=_data())
  err = capsys.readouterr().err
  assert "Traceback" not in err
  said = [line for line in err.splitlines() if not re.match(r"step \d+/\d+ \|", line)]
  assert len(said) == 1 and path in said[0] and "again" in said[0], err  # Progress aside.
  with np.load(path) as new, np.load(intact) as old:  # Replaced: training is deterministic.
    assert sorted(new.files) == sorted(old.files)
    for name in old.files:
      np.testing.assert_array_equal(new[name], old[name], err_msg=name)
  assert retrained.test_accuracy > 0.9
  classifier_lib.get_classifier("toy", str(tmp_path), settings=SETTINGS, data=_data())
  assert capsys.readouterr().err == ""  # Read back from the new file: not trained again.


class _FakeSpace:
  name = "fake-space"

  def __call__(self, images):
    return images.reshape(len(images), -1)[:, :3]


def _helper_messages(tmp_path) -> list[str]:
  """The one-line messages of the evaluation helpers that tell the user to set a flag."""
  os.makedirs(tmp_path, exist_ok=True)
  messages = []

  def message_of(fn, *args, **kwargs):
    with pytest.raises(UserError) as info:
      fn(*args, **kwargs)
    messages.append(str(info.value))

  message_of(features.get_space, _config(inception_weights=""), "inception")
  message_of(features.get_space, _config(inception_weights=str(tmp_path / "none.pt")),
             "inception")
  message_of(features.get_space, _config(), "pixels")
  not_a_zip = tmp_path / "weights.pt"
  not_a_zip.write_bytes(b"not a zip archive")
  message_of(load_params, str(not_a_zip))
  message_of(load_params, str(tmp_path / "absent.pt"))
  a_file = tmp_path / "a_file"  # A cache dir that cannot be made: writes fail.
  a_file.write_text("")
  message_of(features.reference_features, _FakeSpace(), "toy", _toy_data(4)[0], str(a_file))
  message_of(classifier_lib.get_classifier, "toy", str(a_file), settings=dict(epochs=0.5),
             data=_data())
  tr_i, tr_l, te_i, te_l, _ = _data()
  message_of(classifier_lib.get_classifier, "toy", str(tmp_path), settings=SETTINGS,
             data=(tr_i, tr_l, te_i, te_l, 0))
  return messages


def _flags(message: str) -> list[str]:
  """The --flags a message names, leaving out the shell commands it quotes in `backticks`."""
  return re.findall(r"(?<![\w-])--[\w.]+", re.sub(r"`[^`]*`", "", message))


def test_messages_name_flags_of_the_cli_that_runs(tmp_path):
  """Under evaluate, every flag a helper's message names is one evaluate takes; under train.py
  (no CLI names), each is --config.KEY of a key the configs declare."""
  taken = set(evaluate.build_parser()._option_string_actions)  # pylint: disable=protected-access
  with flag_names(evaluate.FLAGS):
    for message in _helper_messages(tmp_path / "evaluate"):
      assert _flags(message) and set(_flags(message)) <= taken, message
  keys = set(common.get_config())
  for message in _helper_messages(tmp_path / "train"):
    named = _flags(message)
    assert named and all(f.startswith("--config.") and f[len("--config."):] in keys
                         for f in named), message


def test_samples_do_not_depend_on_the_batch_size():
  family, key = _ToyFamily(), jax.random.PRNGKey(3)
  images, labels = samples_lib.draw_samples(family, 0, 10, key, batch_size=3)
  all_at_once = samples_lib.draw_samples(family, 0, 10, key, batch_size=500)
  np.testing.assert_allclose(images, all_at_once[0], atol=1e-6)
  np.testing.assert_array_equal(labels, all_at_once[1])
  first = samples_lib.draw_samples(family, 0, 4, key, batch_size=2)
  np.testing.assert_allclose(first[0], images[:4], atol=1e-6)  # A prefix of a longer draw.
  assert len(set(labels.tolist())) == 2 and not np.allclose(images[0], images[1])


def test_runs_of_resized_images_are_scored_at_their_size(tmp_path):
  """image_size > 0 (dcgan32, sngan, wgan_gp): the classifier is trained on, and the reference
  features cached for, the resized set, apart from the native size's files."""
  from genimg_jax.data import load_dataset

  config = _config(dataset="mnist_embedded", image_size=16, eval_classifier_epochs=0.01,
                   eval_cache_dir=str(tmp_path))
  test = load_dataset(config.dataset, "test", image_size=16)
  scorer = samples_lib.SampleScorer(config, "", test.images[:300], test.labels[:300])
  assert "mnist_embedded@16" in scorer.space.name
  scores = scorer(test.images[300:400] / 255.0)
  assert np.isfinite(scores["fid"]) and scores["num_reference"] == 300
  names = [n for d in ("classifier", "reference") for n in os.listdir(tmp_path / d)]
  assert names and all(n.startswith("mnist_embedded@16-") for n in names), names
