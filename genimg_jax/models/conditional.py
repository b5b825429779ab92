"""Class conditioning parts shared by conditional GANs (docs/models.md, "cgan").

Generator: [z, embed(y)] (the label embedding concatenated to the latent).
Discriminator: l(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama 2018), φ the body's last
features, ψ a Dense 1. Shared parts, not an architecture (it defines no `gan_networks`).
"""

import flax.linen as nn
import jax.numpy as jnp

from genimg_jax.models import initializers as inits


def maybe_spectral_norm(layer: nn.Module, spectral_norm: bool, train: bool):
  """`layer` wrapped in flax's SpectralNorm (power-iteration vector in 'batch_stats', updated
  when `train`) or left as is; returns a callable taking the layer's inputs."""
  if not spectral_norm:
    return layer
  wrapped = nn.SpectralNorm(layer)
  return lambda *args: wrapped(*args, update_stats=train)


def concat_label_embedding(z: jnp.ndarray, labels: jnp.ndarray, num_classes: int,
                           embed_dim: int) -> jnp.ndarray:
  """[z, embed(y)]: z [B, L], labels int [B] → [B, L + embed_dim]. Call inside a compact method."""
  embedding = nn.Embed(num_classes, embed_dim, name="label_embedding")(labels)
  return jnp.concatenate([z, embedding.astype(z.dtype)], axis=-1)


class ProjectionOutput(nn.Module):
  """φ(x) [B, F], labels [B] → l(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ [B] (float32).

  With num_classes = 0 (unconditional) only ψ(φ(x)) remains: the usual Dense 1 output.
  """

  num_classes: int = 0
  spectral_norm: bool = False
  dtype: jnp.dtype = jnp.float32
  init_scheme: str = "flax"  # ψ's init (initializers.SCHEMES); the embedding keeps Flax's.

  @nn.compact
  def __call__(self, features, labels=None, train: bool = True):
    psi = nn.Dense(1, dtype=self.dtype, name="psi",
                   **inits.dense_kwargs(self.init_scheme, features.shape[-1]))
    psi = maybe_spectral_norm(psi, self.spectral_norm, train)
    logits = psi(features)[:, 0].astype(jnp.float32)
    if self.num_classes:
      embed = maybe_spectral_norm(nn.Embed(self.num_classes, features.shape[-1],
                                           name="class_embedding"), self.spectral_norm, train)
      projection = jnp.sum(embed(labels).astype(jnp.float32) * features.astype(jnp.float32), -1)
      logits = logits + projection
    return logits
