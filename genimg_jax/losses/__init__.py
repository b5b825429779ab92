"""Losses as plain jnp math, each docstring stating its formula (docs/formulas.md)."""
