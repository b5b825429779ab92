"""Class labels for conditional models: random labels for samples, one grid row per class."""

import jax
import jax.numpy as jnp


def random_labels(key, num: int, num_classes: int) -> jnp.ndarray:
  """int32 [num] labels drawn uniformly from {0, …, num_classes − 1}."""
  return jax.random.randint(key, (num,), 0, num_classes, jnp.int32)


def grid_labels(num: int, num_classes: int) -> tuple[jnp.ndarray, int]:
  """(labels int32 [rows · cols], cols): row r shows class r, cols = max(1, num // num_classes)."""
  cols = max(1, num // num_classes)
  return jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), cols), cols
