"""The offline default data set `mnist_embedded`: a real MNIST subset shipped in the package.

24,000 training and 4,000 test digits (the first ones of the canonical MNIST files), labels
included, in `mnist_embedded.npz.xz` (built by `genimg_jax.data.build_embedded`).
MNIST: Y. LeCun, C. Cortes, C. J. C. Burges (CC BY-SA 3.0).
"""

import functools
import io
import lzma
import os

import numpy as np

EMBEDDED_PATH = os.path.join(os.path.dirname(__file__), "mnist_embedded.npz.xz")
NAME = "mnist_embedded"
NUM_CLASSES = 10


@functools.lru_cache(maxsize=1)
def _arrays() -> dict:
  with open(EMBEDDED_PATH, "rb") as f:
    raw = lzma.decompress(f.read())
  with np.load(io.BytesIO(raw)) as npz:
    return {k: npz[k] for k in npz.files}


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 [N, 28, 28, 1], labels int32 [N]) of split 'train' or 'test'."""
  arrays = _arrays()
  return arrays[f"{split}_images"][..., None], arrays[f"{split}_labels"].astype(np.int32)
