"""Collectives a family's train step calls so one step serves both compiled paths.

Under `jit` (the default) the step sees the global batch and XLA inserts the all-reduce, so
`axis_name` is None and every helper is the identity / the plain draw. Under `pmap` the step
sees this device's rows and `axis_name` names the mapped axis: gradients and metrics are
averaged over devices (`lax.pmean`; the mean of equal-sized per-device means is the global
mean), and per-example noise is drawn with the GLOBAL batch shape and sliced to this device's
rows (`draw_rows`), so a pmap update equals the jit update up to float reassociation. Dropout
masks (drawn inside Flax modules) use `device_key`, one stream per device: equal to jit in
distribution only. BatchNorm must get the same `axis_name` (`nn.BatchNorm(axis_name=...)`) to
use global batch statistics as jit does.
"""

import jax
import jax.numpy as jnp


def mean_over_devices(tree, axis_name: str | None):
  """Mean of every leaf over the mapped devices; the identity under jit (axis_name None)."""
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def device_key(key, axis_name: str | None):
  """A key of its own per device (for dropout and other in-module randomness); `key` under jit."""
  return key if axis_name is None else jax.random.fold_in(key, jax.lax.axis_index(axis_name))


def draw_rows(draw, key, local_shape, axis_name: str | None):
  """This device's rows of `draw(key, global shape)`: `draw(key, local_shape)` under jit; under
  pmap with n devices, the rows [i·B, (i+1)·B) of `draw(key, (n·B, ...))`, so the devices
  together hold exactly the jit path's draw."""
  if axis_name is None:
    return draw(key, local_shape)
  rows_here = local_shape[0]
  full = draw(key, (jax.lax.axis_size(axis_name) * rows_here, *local_shape[1:]))
  return jax.lax.dynamic_slice_in_dim(full, jax.lax.axis_index(axis_name) * rows_here, rows_here)


def randint_rows(key, rows: int, maxval: int, axis_name: str | None):
  """int32 labels uniform in [0, maxval), [rows] = this device's rows of the global draw (as
  `draw_rows`); jax.random.randint(key, (rows,), 0, maxval) under jit."""
  if axis_name is None:
    return jax.random.randint(key, (rows,), 0, maxval, jnp.int32)
  full = jax.random.randint(key, (jax.lax.axis_size(axis_name) * rows,), 0, maxval, jnp.int32)
  return jax.lax.dynamic_slice_in_dim(full, jax.lax.axis_index(axis_name) * rows, rows)
