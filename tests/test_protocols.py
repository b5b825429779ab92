"""FID protocols by name (evaluation/protocols.py): "clean" leaves today's pipeline as it was,
"lucic" draws compare_gan v1's latents and real split, reference caches never mix protocols,
and every refusal is one line."""

import dataclasses
import hashlib
import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax import checkpoint as ckpt
from genimg_jax import evaluate
from genimg_jax.errors import UserError
from genimg_jax.evaluation import features, inception, protocols, resize
from genimg_jax.evaluation import samples as samples_lib
from genimg_jax.reproduce import rows, runner, table
from genimg_jax.train import run_config
from genimg_jax.train.families import build_family
from tests.conftest import make_tiny_gan_config, run_python
from tests.evaluation_support import resolved_config, toy_data


def _one_line_error(fn, *args, **kwargs) -> str:
  with pytest.raises(UserError) as info:
    fn(*args, **kwargs)
  assert "\n" not in str(info.value)
  return str(info.value)


def test_lucic_latents_are_numpy_seed_42_uniform_draws():
  z = protocols.lucic_latents(10_000, 64)
  assert z.shape == (10_000, 64) and z.dtype == np.float32
  np.testing.assert_array_equal(
      z, np.random.RandomState(42).uniform(-1, 1, (10_000, 64)).astype(np.float32))
  saved = np.random.get_state()
  try:
    np.random.seed(42)  # compare_gan v1: the global generator, 64 × z_dim per batch, then cut.
    batches = [np.random.uniform(-1, 1, size=(64, 64)) for _ in range(157)]
  finally:
    np.random.set_state(saved)
  np.testing.assert_array_equal(z, np.concatenate(batches)[:10_000].astype(np.float32))
  assert -1.0 <= z.min() and z.max() < 1.0


def test_clean_preprocessing_is_the_program_it_was():
  """The default and "clean" trace to the same program as the pre-protocol composition, so clean
  features (and every clean FID) are bit-identical to before."""
  images = jnp.asarray(np.random.default_rng(0).random((2, 28, 28, 1), np.float32))

  def before(x):
    values = resize.clean_resize(resize.to_uint8_values(x), (299, 299))
    return (jnp.repeat(values, 3, axis=-1) - 128.0) / 128.0

  program = str(jax.make_jaxpr(before)(images))
  assert str(jax.make_jaxpr(inception.preprocess)(images)) == program
  assert str(jax.make_jaxpr(lambda x: inception.preprocess(x, "clean"))(images)) == program
  assert inception.InceptionFeatures("unused", params={}).protocol == "clean"
  lucic = np.asarray(inception.preprocess(images, "lucic"))
  assert not np.array_equal(lucic, np.asarray(before(images)))  # The protocol is not ignored.


class _Space:
  def __init__(self, protocol=None):
    self.name = "fake-space"
    self.calls = 0
    if protocol is not None:
      self.protocol = protocol

  def __call__(self, images):
    self.calls += 1
    return images.reshape(len(images), -1)[:, :3] * 2.0


def test_reference_caches_are_keyed_by_protocol(tmp_path):
  clean, lucic = _Space("clean"), _Space("lucic")
  path = features.reference_path(str(tmp_path), clean, "mnist", "test", 10_000)
  assert path.endswith("reference/mnist-test-10000-fake-space.npy")  # The name it always had.
  assert features.reference_path(str(tmp_path), _Space(), "mnist", "test", 10_000) == path
  assert features.reference_path(str(tmp_path), lucic, "mnist", "test", 10_000) == (
      path[:-len(".npy")] + "-lucic.npy")
  images = toy_data(8)[0]
  for space in (clean, lucic, clean, lucic):
    features.reference_features(space, "toy", images, str(tmp_path))
  assert clean.calls == lucic.calls == 1  # Each computed once, neither read for the other.
  assert sorted(p.name for p in (tmp_path / "reference").iterdir()) == [
      "toy-test-8-fake-space-lucic.npy", "toy-test-8-fake-space.npy"]


def test_the_config_names_the_spaces_protocol():
  assert features.protocol_of(resolved_config()) == "clean"  # No eval_protocol key: clean.
  config = resolved_config()
  config.eval_protocol = "lucic"  # What evaluate sets on its copy of the run's config.
  assert features.protocol_of(config) == "lucic"


def test_bad_protocol_names_and_misuse_are_one_line_errors():
  assert "clean, lucic" in _one_line_error(protocols.get, "legacy")
  assert "unknown FID protocol 'legacy'" in _one_line_error(
      evaluate.main.__wrapped__, ["--workdir", "unused", "--protocol", "legacy"])
  assert "--space inception" in _one_line_error(evaluate.check_protocol, "lucic", "classifier",
                                                10_000)
  assert "10,000 samples" in _one_line_error(evaluate.check_protocol, "lucic", "inception", 500)
  assert evaluate.check_protocol("clean", "classifier", 40).name == "clean"


@pytest.mark.slow  # A Python child that imports JAX: ~5 s.
def test_evaluate_cli_refuses_a_bad_protocol_in_one_line():
  result = run_python(["-m", "genimg_jax.evaluate", "--workdir", "unused", "--protocol", "tf"])
  assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
  assert result.stderr.strip().splitlines() == [
      "error: unknown FID protocol 'tf': choose one of clean, lucic (docs/inception.md)"]


def test_lucic_scores_unconditional_gans_trained_on_its_prior_only():
  lucic = protocols.get("lucic")

  def check(family, num_classes, prior="uniform"):
    config = types.SimpleNamespace(family=family, model=f"a_{family}")
    protocols.check_family(lucic, config, types.SimpleNamespace(num_classes=num_classes,
                                                                latent_distribution=prior))

  check("gan", 0)
  assert "class-conditional GAN" in _one_line_error(check, "gan", 10)
  assert "a_vae is a VAE" in _one_line_error(check, "vae", 0)
  assert "trained on z ~ normal" in _one_line_error(check, "gan", 0, "normal")
  protocols.check_family(protocols.get("clean"), types.SimpleNamespace(family="vae"), None)


def test_lucic_compares_with_the_first_10000_test_images():
  images, labels = np.arange(12_000)[:, None], np.arange(12_000) % 10
  real, real_labels = protocols.reference_images(protocols.get("lucic"), "mnist", images, labels)
  np.testing.assert_array_equal(real, images[:10_000])
  np.testing.assert_array_equal(real_labels, labels[:10_000])
  same, _ = protocols.reference_images(protocols.get("clean"), "mnist", images, labels)
  assert same is images  # Clean: the whole split.
  assert "has 4,000" in _one_line_error(protocols.reference_images, protocols.get("lucic"),
                                        "mnist_embedded", images[:4000], labels[:4000])


def test_lucic_samples_are_g_of_the_numpy_latents_in_order():
  """draw_fixed_latents feeds the protocol's latents, in order, through family.generate."""
  family = types.SimpleNamespace(
      latent_dim=3, generate=lambda state, z: (z[:, :, None, None] + state) / 4.0 + 0.5)
  lucic = protocols.get("lucic")
  images = protocols.draw_fixed_latents(lucic, family, 1.0, batch_size=3_000)  # Last one padded.
  expected = (protocols.lucic_latents(10_000, 3)[:, :, None, None] + 1.0) / 4.0 + 0.5
  assert images.shape == (10_000, 3, 1, 1)
  np.testing.assert_allclose(images, expected, rtol=1e-6)


def test_rows_keep_their_hash_unless_they_choose_another_protocol():
  """A row's protocol is hashed only when it is not "clean": adding the field made no finished
  row stale, and switching a row to "lucic" does."""
  row = rows.ROWS["tiny_gan"]
  data = {k: v for k, v in dataclasses.asdict(row).items()  # The hash before the field.
          if k not in runner.WORDS and k != "protocol"}
  data["configs"] = [run_config.without_neutral(runner.row_config(row, seed).to_dict())
                     for seed in row.seeds]
  before = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
  assert row.protocol == "clean" and runner.row_hash(row) == before[:12]
  assert runner.row_hash(dataclasses.replace(row, protocol="lucic")) != runner.row_hash(row)


def test_lucic_rows_score_the_inception_fid_as_lucic_et_al():
  assert {rows.ROWS[n].protocol for n in ("lucic_ns_gan", "lucic_lsgan", "lucic_wgan_gp")} == {
      "lucic"}
  assert table._spaces(dataclasses.asdict(rows.ROWS["lucic_ns_gan"])) == (
      "classifier (10,000 samples), inception (10,000 samples, lucic FID protocol)")
  old_record = {k: v for k, v in dataclasses.asdict(rows.ROWS["gan"]).items() if k != "protocol"}
  assert table._spaces(old_record) == "classifier (10,000 samples)"


class _FakeInception:
  """Stands in for the Inception space (no weights in the fast tier): 7×7 block means."""

  def __init__(self, weights_path, protocol="clean"):
    self.name, self.protocol = "inception-fake", protocol

  def __call__(self, images):
    n = len(images)
    return images.reshape(n, 4, 7, 4, 7).mean(axis=(2, 4)).reshape(n, 16).astype(np.float32)


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
  """(run folder with checkpoint 3 of an initialised tiny GAN, its family and state)."""
  shape = (28, 28, 1)
  config = make_tiny_gan_config(latent_distribution="uniform")  # The prior lucic feeds G.
  family = build_family(config, shape)
  state = jax.jit(lambda key: family.init_state(key, 64, shape))(jax.random.PRNGKey(0))
  state = state.replace(step=state.step + 3)
  workdir = str(tmp_path_factory.mktemp("gan_run"))
  checkpointer = ckpt.Checkpointer(workdir, keep=1)
  checkpointer.save(3, state, run_config.run_info(config, shape, 64))
  checkpointer.close()
  return workdir, family, state


@pytest.mark.slow  # A tiny GAN's checkpoint and two evaluations: ~5 s.
def test_evaluate_scores_the_lucic_protocols_images(gan_run, tmp_path, monkeypatch):
  """evaluate --protocol lucic: G of the numpy latents against the first test images, with the
  protocol's own reference cache; clean beside it unchanged (counts shrunk: embedded digits)."""
  workdir, family, state = gan_run
  monkeypatch.setitem(protocols.PROTOCOLS, "lucic", dataclasses.replace(
      protocols.PROTOCOLS["lucic"], num_reference=300, num_samples=200))
  monkeypatch.setattr(features, "InceptionSpace", _FakeInception)
  monkeypatch.setattr(samples_lib, "_optional_classifier", lambda config: None)
  cache, out = str(tmp_path / "cache"), str(tmp_path / "lucic.npy")
  lucic = evaluate.evaluate(workdir, 200, None, "inception", 0, 5, cache, "unused.pt", False,
                            out, protocol="lucic")
  assert lucic["protocol"] == "lucic" and lucic["space"] == "inception-fake"
  assert lucic["num_samples"] == 200 and lucic["num_reference"] == 300 and lucic["fid"] > 0
  expected = family.generate(state, protocols.lucic_latents(200, family.latent_dim))
  np.testing.assert_allclose(np.load(out), np.asarray(expected), rtol=1e-5, atol=1e-6)
  clean = evaluate.evaluate(workdir, 200, None, "inception", 0, 5, cache, "unused.pt", False,
                            protocol="clean")
  assert clean["protocol"] == "clean" and clean["num_reference"] == 4000
  assert sorted(p.name for p in (tmp_path / "cache" / "reference").iterdir()) == [
      "mnist_embedded-test-300-inception-fake-lucic.npy",
      "mnist_embedded-test-4000-inception-fake.npy"]
