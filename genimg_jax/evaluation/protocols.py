"""FID protocols by name: how images reach the Inception network, and which real images and
which samples an Inception-space FID compares.

- "clean" (the default): clean-fid's "clean" mode. Images are rounded to 8-bit values, resized
  with Pillow's bicubic filter on float images, scaled (v − 128)/128; the reference is the whole
  test split; the samples are `--num` draws of the family's own prior from `--seed`.
- "lucic": compare_gan v1's evaluation (google/compare_gan, branch v1, src/eval_gan_lib.py and
  src/fid_score.py), the code behind Lucic et al. 2018 ("Are GANs Created Equal?"). Images are
  multiplied by 255 in float32 and not rounded, resized with TF 1's legacy bilinear resize
  (tf1_resize.py), scaled (x − 128)/128; the reference is the first 10,000 test images; the
  samples are 10,000 images of G in inference mode from z ~ U(−1, 1), drawn with numpy's global
  generator seeded 42 (`np.random.seed(42)`, then `np.random.uniform(-1, 1, (64, z_dim))` per
  batch of 64 until 10,000 are reached, fed through a float32 placeholder). Only unconditional
  GANs trained on that prior (config.latent_distribution = "uniform") fit it; other runs are
  refused.

Both use the same network (the 2015-12-05 Inception graph's pool_3; docs/inception.md says why
the weights are the same) and the same Fréchet distance (fid.py). Why two: clean-fid's pipeline
is the documented, library-independent choice; Lucic et al.'s numbers were made with the legacy
one, and a number is comparable with theirs only when computed their way.
"""

import dataclasses

import jax
import numpy as np

from genimg_jax.errors import UserError

DEFAULT = "clean"


@dataclasses.dataclass(frozen=True)
class Protocol:
  """What a protocol fixes. `None` counts mean "the caller's" (the whole split, `--num`)."""

  name: str
  quantise: bool  # Round to 8-bit values before resizing (clean-fid starts from PNG values).
  resize: str  # "pil_bicubic" (resize.clean_resize) or "tf1_bilinear" (tf1_resize).
  num_reference: int | None  # The first N test images are the reference; None: all of them.
  num_samples: int | None  # Samples scored; None: the caller's count.
  latent_seed: int | None  # numpy seed of U(−1, 1) latents; None: the family's prior, --seed.
  latent_batch: int = 0  # The latents are drawn in batches of this many (compare_gan: 64).


PROTOCOLS = {
    "clean": Protocol("clean", quantise=True, resize="pil_bicubic", num_reference=None,
                      num_samples=None, latent_seed=None),
    "lucic": Protocol("lucic", quantise=False, resize="tf1_bilinear", num_reference=10_000,
                      num_samples=10_000, latent_seed=42, latent_batch=64),
}


def get(name: str) -> Protocol:
  """The protocol `name`; a one-line UserError naming the choices otherwise."""
  if name not in PROTOCOLS:
    raise UserError(f"unknown FID protocol {name!r}: choose one of {', '.join(PROTOCOLS)} "
                    f"(docs/inception.md)")
  return PROTOCOLS[name]


def lucic_latents(num: int, latent_dim: int, seed: int = 42, batch: int = 64) -> np.ndarray:
  """float32 [num, latent_dim]: compare_gan v1's evaluation latents.

  z ~ U(−1, 1) = −1 + 2u, u from numpy's legacy Mersenne Twister seeded `seed`
  (`np.random.seed(seed)` is RandomState(seed)), drawn `batch` rows at a time,
  ⌈num / batch⌉ batches concatenated and cut to `num`, then cast to float32 (the placeholder's
  dtype). Drawing in batches gives the same numbers as one draw (the stream is consumed row by
  row); it is kept to mirror the source.
  """
  rng = np.random.RandomState(seed)
  batches = [rng.uniform(-1, 1, size=(batch, latent_dim)) for _ in range(-(-num // batch))]
  return np.concatenate(batches)[:num].astype(np.float32)


def check_family(protocol: Protocol, config, family) -> None:
  """One-line UserError when the protocol's latent draw does not fit the run: it needs an
  unconditional GAN whose G was trained on that same prior, z ~ U(−1, 1) (a G trained on
  N(0, I) would be scored off its prior)."""
  if protocol.latent_seed is None:
    return
  if config.family != "gan" or family.num_classes != 0:
    kind = "a class-conditional GAN" if config.family == "gan" else f"a {config.family.upper()}"
    raise UserError(f"--protocol {protocol.name} scores unconditional GANs (G fed z ~ U(−1, 1), "
                    f"as compare_gan); model {config.model} is {kind}: use --protocol clean")
  prior = getattr(family, "latent_distribution", "normal")
  if prior != "uniform":
    raise UserError(f"--protocol {protocol.name} feeds G z ~ U(−1, 1), as compare_gan; model "
                    f"{config.model} was trained on z ~ {prior}: train it with "
                    f"latent_distribution='uniform' (the lucic_* configs do), or use --protocol "
                    f"clean")


def reference_images(protocol: Protocol, dataset: str, images: np.ndarray,
                     labels: np.ndarray | None):
  """The protocol's real images (and their labels): the first `num_reference` of the split."""
  if protocol.num_reference is None:
    return images, labels
  if len(images) < protocol.num_reference:
    raise UserError(f"--protocol {protocol.name} compares with the first "
                    f"{protocol.num_reference:,} test images; {dataset}'s test split has "
                    f"{len(images):,}: use a data set with enough test images, or --protocol "
                    f"clean")
  n = protocol.num_reference
  return images[:n], (None if labels is None else labels[:n])


def draw_fixed_latents(protocol: Protocol, family, state, batch_size: int = 500) -> np.ndarray:
  """float32 [num_samples, H, W, C] in [0, 1]: G (eval mode, `family.generate`) on the
  protocol's numpy latents, in batches of `batch_size` (BN uses its moving averages in eval
  mode, so the batch size does not change the images)."""
  latents = lucic_latents(protocol.num_samples, family.latent_dim, protocol.latent_seed,
                          protocol.latent_batch)
  generate = jax.jit(family.generate)
  batch = min(batch_size, len(latents))
  images = []
  for start in range(0, len(latents), batch):
    chunk = latents[start:start + batch]
    padded = np.concatenate([chunk, np.zeros((batch - len(chunk), chunk.shape[1]), np.float32)])
    images.append(np.asarray(generate(state, padded), np.float32)[:len(chunk)])
  return np.concatenate(images)
