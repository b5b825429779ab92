"""The device mesh every run trains on: one "data" axis over every process's devices.

The engine (train/compiled.py) and the data pipeline (data/placement.py) both lay arrays out on
this mesh: the training state replicated, batches and data shards split over the "data" axis.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over the given (default: every process's) devices."""
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the mesh."""
  return NamedSharding(mesh, P(DATA_AXIS))


def local_device_ids(mesh: Mesh) -> list[int]:
  """Mesh positions (0 … D − 1) of this process's devices, in mesh order."""
  return [d for d, device in enumerate(mesh.devices.flat)
          if device.process_index == jax.process_index()]
