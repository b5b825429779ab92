"""Model families: the interface every family provides, and `config.family` → its class.

A family (train/gan_step.py's GAN, train/vae_step.py's VAE) turns a config into networks,
optimisers, a state pytree and one pure update. The engine (train/compiled.py, train/loop.py),
the outputs and evaluation see a family only through `Family` below; what only some families
can do is declared by the `reconstructs` / `scores_test_split` / `estimates_likelihood` flags,
so callers ask the flag, never the object's attributes.
"""

from typing import Any, ClassVar, Protocol

from genimg_jax.errors import UserError
from genimg_jax.train.gan_step import GAN
from genimg_jax.train.vae_step import VAE


class Family(Protocol):
  """What every family provides. Families are frozen dataclasses (the engine makes the pmap
  variant with `dataclasses.replace(family, axis_name=...)`)."""

  reconstructs: ClassVar[bool]  # Has reconstruct(): images → reconstructions (VAEs).
  scores_test_split: ClassVar[bool]  # Has evaluate(): test-split metrics (a VAE's −ELBO).
  estimates_likelihood: ClassVar[bool]  # Has log_importance_weights(): IWAE bounds of log p(x).
  builder: ClassVar[str]  # The architecture function that makes its networks (models/__init__).

  selects_on_validation: bool  # Keeps the best-validation model in `state.best` (selection.py).
  latent_dim: int
  data_range: tuple[float, float]  # Pixel range the networks see (data/batching.scale_images).
  num_classes: int  # > 0: class-conditional (latents carry labels).
  axis_name: str | None  # pmap's device axis: the step pmeans over it; None under jit.

  @classmethod
  def check_config(cls, config) -> None:
    """One-line UserError for the first invalid value of the family's own keys."""

  @classmethod
  def from_config(cls, config, image_shape, num_classes: int) -> "Family":
    """The family for this config, image shape (H, W, C) and the data's class count."""

  @property
  def batches_per_step(self) -> int:
    """Real batches one step consumes (the engine draws them as [n, B, ...] when n > 1)."""

  def init_state(self, rng, num_examples: int, image_shape) -> Any:
    """Fresh state pytree (with `step`, `rng`, `data_order` [num_examples]); `rng` becomes the
    run key."""

  def train_step(self, state, batch: dict, key) -> tuple[Any, dict]:
    """One update: (state, {"image": uint8 [(n,) B, H, W, C], "label": int32 [(n,) B]}, key)
    → (state, scalar metrics)."""

  def sample_latents(self, key, num: int) -> Any:
    """Prior draws for `generate`: z [num, latent_dim], or {"z", "label"} when conditional."""

  def grid_latents(self, key, num: int) -> tuple[Any, int | None]:
    """(latents, columns) of a sample grid (conditional grids: one row per class)."""

  def generate(self, state, latents) -> Any:
    """latents → images float32 [N, H, W, C] in [0, 1]."""

  # Optional capabilities: called only when the flag above says the family has them.
  def reconstruct(self, state, images_u8, labels=None) -> Any:
    """uint8 images → reconstructions float32 [N, H, W, C] in [0, 1]."""

  def evaluate(self, state, images_u8, labels, key, batch_size: int) -> dict[str, float]:
    """Test-split metrics of `state` (float per name)."""

  def log_importance_weights(self, state, images_u8, labels, key, num_samples: int) -> Any:
    """log p(x, z_i) − log q(z_i|x) [num_samples, B] for z_i ~ q(z|x)."""

  def validation_score(self, state, images_u8, labels, key, batch_size: int) -> float:
    """The validation split's score (lower is better) that selects the model to score."""


FAMILIES: dict[str, type] = {"gan": GAN, "vae": VAE}


def family_class(config) -> type:
  """The class named by `config.family`; one-line UserError for an unknown name."""
  if config.family not in FAMILIES:
    raise UserError(f"config.family={config.family!r} is not one of: {', '.join(FAMILIES)}")
  return FAMILIES[config.family]


def build_family(config, image_shape, num_classes: int = 0) -> Family:
  """The family object for this config, image shape (H, W, C) and the data's class count.

  `num_classes` is the data set's (0: unlabelled); a conditional config needs it > 0.
  """
  if config.conditional and num_classes <= 0:
    raise UserError(f"model {config.model!r} is class-conditional but data set "
                    f"{config.dataset!r} has no labels: use a labelled data set (e.g. "
                    f"mnist_embedded, mnist, cifar10) or an unconditional model")
  return family_class(config).from_config(config, image_shape, num_classes)
