"""The "lucic" protocol's numeric steps against TensorFlow's own kernels: TF 1's legacy bilinear
resize, compare_gan's whole preprocessing of grey [0, 1] images, and the Fréchet distance as
compare_gan v1's TF-GAN computed it.

tests/data/tf1_reference.npz was written once by tests/reference/tf1_reference.py (TensorFlow in
a throwaway venv; the project never imports TF).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genimg_jax.evaluation import fid as fid_lib
from genimg_jax.evaluation import inception, tf1_resize
from reference import tf1_reference

REFERENCE = np.load(os.path.join(os.path.dirname(__file__), "data", "tf1_reference.npz"))
# Float32 precision on the 0-255 scale: 8 units in the last place of 255 (1.2e-4, 5e-7 of the
# range). Eager JAX matches TF bit for bit; compiled, XLA may fuse multiply-adds, which moved
# results by up to 3 units (4.6e-5) on CPU.
ULP_255 = float(np.spacing(np.float32(255.0)))
TOLERANCE = 8 * ULP_255


@pytest.mark.parametrize("name", sorted(tf1_reference.RESIZE_CASES))
def test_resize_matches_tensorflow_resize_bilinear(name):
  images = REFERENCE[f"resize_{name}_in"]
  np.testing.assert_array_equal(images, tf1_reference.resize_inputs(name))  # Same inputs.
  size = tf1_reference.RESIZE_CASES[name][1]
  rows, cols = REFERENCE[f"resize_{name}_rows"], REFERENCE[f"resize_{name}_cols"]
  resize = jax.jit(lambda x: tf1_resize.legacy_bilinear_resize(x, size))
  ours = np.asarray(resize(jnp.asarray(images)))
  assert ours.shape == (len(images), *size, images.shape[-1]) and ours.dtype == np.float32
  np.testing.assert_allclose(ours[:, rows][:, :, cols], REFERENCE[f"resize_{name}_out"],
                             rtol=0, atol=TOLERANCE)


def test_taps_anchor_at_the_corner_and_clamp_at_the_edge():
  lo, hi, t = tf1_resize.legacy_taps(2, 4)  # Sources 0, 0.5, 1, 1.5 (scale 1/2).
  np.testing.assert_array_equal(lo, [0, 0, 1, 1])
  np.testing.assert_array_equal(hi, [0, 1, 1, 1])  # The last input repeats past the edge.
  np.testing.assert_array_equal(t, [0.0, 0.5, 0.0, 0.5])


def test_lucic_preprocessing_matches_compare_gans_steps():
  """255x unrounded, TF 1 bilinear to 299×299, (x − 128)/128, grey to RGB, as TF-GAN did."""
  images = REFERENCE["pipeline_in"]
  np.testing.assert_array_equal(images, tf1_reference.pipeline_inputs())
  ours = np.asarray(jax.jit(lambda x: inception.preprocess(x, "lucic"))(jnp.asarray(images)))
  assert ours.shape == (2, 299, 299, 3)
  rows, cols = REFERENCE["pipeline_rows"], REFERENCE["pipeline_cols"]
  np.testing.assert_allclose(ours[:, rows][:, :, cols], REFERENCE["pipeline_out"], rtol=0,
                             atol=TOLERANCE / 128.0)


def test_frechet_distance_matches_compare_gans_tf_gan():
  """fid.py (eigendecompositions) against TF-GAN v1's SVD square roots, cast to float32."""
  ours = fid_lib.fid(REFERENCE["fid_a"], REFERENCE["fid_b"])
  assert ours == pytest.approx(float(REFERENCE["fid"]), rel=1e-6)
