"""Optimisers from config (Optax)."""

import optax


def adam_from_config(config) -> optax.GradientTransformation:
  """Adam(config.learning_rate, b1=config.adam_b1, b2=config.adam_b2)."""
  return optax.adam(config.learning_rate, b1=config.adam_b1, b2=config.adam_b2)
