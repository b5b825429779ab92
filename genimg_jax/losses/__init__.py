"""Losses as plain jnp math, each docstring stating its formula (SPEC §2)."""
