"""Makes tests/data/tf1_reference.npz with TensorFlow (run by hand; the project needs no TF).

    python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy
    /tmp/tfvenv/bin/python tests/reference/tf1_reference.py

Records what the "lucic" FID protocol (compare_gan v1, the code behind Lucic et al. 2018) does
with TensorFlow's own kernels, for tests/test_tf1_resize.py:

  resize_<case>_in / _rows / _cols / _out   inputs (float32 [N, H, W, C], values in [0, 255],
      some whole numbers as real images hold, some not as a generator's are) and
      `tf.compat.v1.image.resize_bilinear` of them (align_corners=False, half-pixel centres off:
      TF 1's only mode) at the output rows × columns listed (every 7th and the last ones: the
      whole output would make the file several MB);
  pipeline_in / _rows / _cols / _out   grey [0, 1] images through compare_gan's steps: tiled
      to 3 channels, × 255 in float32 (no rounding to 8 bits), resize_bilinear to 299×299,
      (x − 128) / 128 (TF-GAN's preprocess_image);
  fid_a / fid_b / fid   two float32 feature sets and their Fréchet distance computed as TF-GAN's
      frechet_classifier_distance_from_activations did in compare_gan v1: float64 statistics,
      covariance ÷ (n − 1), matrix square roots by SVD with singular values below 1e-10 left
      unrooted, the result cast back to float32.

Inputs come from numpy's RandomState (a frozen stream) so they regenerate identically.
"""

import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "tf1_reference.npz")
SIZE = 299
# name: (shape [N, H, W, C], output size, whole-number images): Lucic et al.'s data sizes (MNIST,
# CIFAR-10, CelebA 64×64), a non-square one, and a small one that shrinks one axis.
RESIZE_CASES = {
    "grey28": ((2, 28, 28, 1), (SIZE, SIZE)),
    "rgb28": ((1, 28, 28, 3), (SIZE, SIZE)),
    "rect32x40": ((1, 32, 40, 3), (SIZE, SIZE)),
    "celeba64": ((1, 64, 64, 3), (SIZE, SIZE)),
    "small9x7": ((2, 9, 7, 1), (5, 13)),
}


def resize_inputs(name: str) -> np.ndarray:
  """Case `name`'s float32 images: the first whole numbers 0..255, the rest uniform [0, 255)."""
  shape, _ = RESIZE_CASES[name]
  rng = np.random.RandomState(sum(map(ord, name)))
  images = (rng.uniform(0.0, 255.0, shape)).astype(np.float32)
  images[0] = np.floor(images[0])
  return images


def sampled(size: int) -> np.ndarray:
  """Output indices kept: every 7th, and the last three (where the edge clamps)."""
  return np.unique(np.concatenate([np.arange(0, size, 7), np.arange(max(size - 3, 0), size)]))


def pipeline_inputs() -> np.ndarray:
  """Two grey [0, 1] images: an 8-bit real one (u / 255 in float32) and a generator-like one."""
  rng = np.random.RandomState(42)
  real = rng.randint(0, 256, (28, 28, 1)).astype(np.float32) / np.float32(255.0)
  fake = rng.uniform(0.0, 1.0, (28, 28, 1)).astype(np.float32)
  return np.stack([real, fake])


def fid_features() -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.RandomState(7)
  a = rng.normal(0.0, 1.0, (300, 16)).astype(np.float32)
  mix = rng.normal(0.0, 0.3, (16, 16))
  b = (rng.normal(0.2, 1.0, (300, 16)) @ (np.eye(16) + mix)).astype(np.float32)
  return a, b


def tf_fid(a: np.ndarray, b: np.ndarray, tf) -> np.ndarray:
  """compare_gan v1's FID from float32 activations, in TF ops (SVD square roots)."""
  def sqrt_psd(mat, eps=1e-10):
    s, u, v = tf.linalg.svd(mat)
    root = tf.where(s < eps, s, tf.sqrt(s))
    return tf.matmul(tf.matmul(u, tf.linalg.diag(root)), v, transpose_b=True)

  def stats(x):
    x = tf.cast(x, tf.float64)
    mean = tf.reduce_mean(x, 0)
    centred = x - mean
    n = tf.cast(tf.shape(x)[0], tf.float64)
    return mean, tf.matmul(centred, centred, transpose_a=True) / (n - 1)

  m, sigma = stats(a)
  m_v, sigma_v = stats(b)
  root = sqrt_psd(sigma)
  trace_sqrt = tf.linalg.trace(sqrt_psd(tf.matmul(root, tf.matmul(sigma_v, root))))
  fid = tf.linalg.trace(sigma + sigma_v) - 2.0 * trace_sqrt + tf.square(tf.norm(m - m_v))
  return tf.cast(fid, tf.float32).numpy()


def main() -> None:
  import tensorflow as tf  # Only this script needs TensorFlow.

  resize = tf.compat.v1.image.resize_bilinear
  arrays = {"tf_version": np.array(tf.__version__)}
  for name, (_, size) in RESIZE_CASES.items():
    images = resize_inputs(name)
    out = resize(images, list(size)).numpy()
    rows, cols = sampled(size[0]), sampled(size[1])
    arrays.update({f"resize_{name}_in": images, f"resize_{name}_rows": rows,
                   f"resize_{name}_cols": cols,
                   f"resize_{name}_out": out[:, rows][:, :, cols].astype(np.float32)})
  grey = pipeline_inputs()
  values = np.tile(grey, [1, 1, 1, 3])
  values *= np.float32(255.0)  # compare_gan: `images *= 255.0` on a float32 array.
  prepared = ((resize(values, [SIZE, SIZE]) - 128.0) / 128.0).numpy()
  rows = cols = sampled(SIZE)
  arrays.update(pipeline_in=grey, pipeline_rows=rows, pipeline_cols=cols,
                pipeline_out=prepared[:, rows][:, :, cols].astype(np.float32))
  a, b = fid_features()
  arrays.update(fid_a=a, fid_b=b, fid=tf_fid(a, b, tf))
  np.savez_compressed(OUT, **arrays)
  print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes), TF {tf.__version__}")


if __name__ == "__main__":
  if len(sys.argv) != 1:
    sys.exit(__doc__)
  main()
