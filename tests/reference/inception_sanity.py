"""The MNIST sanity ranking in the Inception space, through torch and through the Flax port (run by
hand; docs/evaluation.md has the numbers). Four steps, the torch one in a torch environment:

    python tests/reference/inception_sanity.py sets 500 /tmp/sets.npz            # project env
    /work/torchenv/bin/python tests/reference/inception_sanity.py torch \\
        PATH/default_1.pt /tmp/sets.npz /tmp/torch.npz                          # torch env
    python tests/reference/inception_sanity.py ours WEIGHTS /tmp/sets.npz /tmp/ours.npz
    python tests/reference/inception_sanity.py fid /tmp/torch.npz /tmp/ours.npz

`sets`: the first N of each set of tests/test_e2e_evaluation_mnist.py plus test[:N] as "test".
`torch`: clean-fid's "clean" pipeline (Pillow bicubic, inception_reference.py) + torch.jit.load.
`ours`: genimg_jax's InceptionFeatures. `fid`: FID of each set against "test", per file.
"""

import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def sets(n: str, out: str) -> None:
  sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
  from genimg_jax.data.idx import read_idx_split
  from tests.test_e2e_evaluation_mnist import MNIST_DIR, _sanity_sets

  (train, _), (test, _) = read_idx_split(MNIST_DIR, "train"), read_idx_split(MNIST_DIR, "test")
  arrays = {k.split("[")[0].replace(" ", "_"): v[:int(n)]
            for k, v in _sanity_sets(train).items()}
  np.savez(out, test=test[:int(n)].astype(np.float32) / 255.0, **arrays)


def _embed(features, sets_path: str, out: str) -> None:
  embedded = {}
  for name, images in np.load(sets_path).items():
    start = time.time()
    embedded[name] = np.concatenate([features(images[i:i + 50])
                                     for i in range(0, len(images), 50)])
    print(f"{name}: {len(images)} images in {time.time() - start:.0f} s", flush=True)
  np.savez(out, **embedded)


def torch_features(weights: str, sets_path: str, out: str) -> None:
  import torch

  sys.path.insert(0, HERE)
  from inception_reference import clean_fid_inputs

  torch.set_num_threads(2)
  model = torch.jit.load(weights, map_location="cpu").eval()

  def features(images):
    x = clean_fid_inputs(images).transpose(0, 3, 1, 2)
    with torch.no_grad():
      return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()

  _embed(features, sets_path, out)


def our_features(weights: str, sets_path: str, out: str) -> None:
  from genimg_jax.evaluation.inception import InceptionFeatures

  _embed(InceptionFeatures(weights), sets_path, out)


def fids(*paths: str) -> None:
  from genimg_jax.evaluation import fid

  for path in paths:
    features = dict(np.load(path))
    reference = fid.gaussian_stats(features.pop("test"))
    print(path, {name: round(fid.frechet_distance(reference, fid.gaussian_stats(f)), 2)
                 for name, f in features.items()})


if __name__ == "__main__":
  steps = dict(sets=sets, torch=torch_features, ours=our_features, fid=fids)
  steps[sys.argv[1]](*sys.argv[2:])
