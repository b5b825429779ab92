"""Read a torch zip archive (TorchScript `torch.jit.save` or `torch.save`) without importing torch.

Such a file is a zip: `<name>/data.pkl` pickles the object tree (TorchScript: `__torch__.*`
module objects whose pickled state is a dict of attributes), tensors appear in it as calls to
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`, and each storage is a
persistent id `('storage', torch.FloatStorage, key, location, numel)` whose raw little-endian
bytes are the entry `<name>/data/<key>`. `<name>/code/` holds the TorchScript source (the graph).
The unpickler here resolves only a fixed list of globals (no arbitrary code runs) and builds
numpy arrays; `__torch__.*` classes become `TorchObject`s that record their state.
"""

import collections
import io
import pickle
import zipfile

import numpy as np


class ArchiveError(ValueError):
  """The file is not a torch zip archive this reader understands (message says why)."""


class TorchObject:
  """A pickled TorchScript object (module or class): its type name and its `__setstate__` state."""

  type_name = "?"

  def __setstate__(self, state):
    self.__dict__["state"] = state

  def __getattr__(self, name):
    state = self.__dict__.get("state")
    if isinstance(state, dict) and name in state:
      return state[name]
    raise AttributeError(f"{self.type_name} has no attribute {name!r}")

  def __repr__(self):
    return f"TorchObject({self.type_name})"


class _StorageType:
  """Stands for `torch.<X>Storage`: the numpy dtype its bytes decode to."""

  def __init__(self, name: str, dtype):
    self.name, self.dtype = name, np.dtype(dtype).newbyteorder("<")


_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,  # Raw bits; widened to float32 in _storage_array.
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  """torch._utils._rebuild_tensor_v2 as numpy: a copy of storage[offset + Σ idx_i·stride_i]."""
  size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
  if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
    raise ArchiveError(f"bad tensor layout: size {size}, stride {stride}")
  if 0 in size:
    return np.zeros(size, storage.dtype)
  last = int(storage_offset) + sum((n - 1) * s for n, s in zip(size, stride))
  if storage_offset < 0 or last >= storage.size:
    raise ArchiveError(f"tensor (offset {storage_offset}, size {size}, stride {stride}) "
                       f"runs past its storage of {storage.size} elements")
  view = np.lib.stride_tricks.as_strided(
      storage[int(storage_offset):], shape=size,
      strides=tuple(s * storage.itemsize for s in stride), writeable=False)
  return np.array(view)  # Owns its memory, C-contiguous.


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
  """torch._utils._rebuild_parameter(_with_state): a parameter is its tensor."""
  return data


def _restore_type_tag(value, type_str):
  """torch.jit._pickle.restore_type_tag: the tag only matters to torch's type checker."""
  return value


def _unsupported(name):
  """A global the reader knows but cannot rebuild without torch's runtime tables."""
  def fail(*args):
    raise ArchiveError(f"{name} is not supported (tensor tables of TorchScript constants)")
  return fail


_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch.jit._pickle", "build_intlist"): list,
    ("torch.jit._pickle", "build_doublelist"): list,
    ("torch.jit._pickle", "build_boollist"): list,
    ("torch.jit._pickle", "build_tensorlist"): list,
    ("torch.jit._pickle", "restore_type_tag"): _restore_type_tag,
    ("torch.jit._pickle", "build_tensor_from_id"): _unsupported("build_tensor_from_id"),
}


class _Unpickler(pickle.Unpickler):
  """Resolves torch globals to numpy builders and storages to arrays read from the zip."""

  def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
    super().__init__(file)
    self._archive, self._prefix = archive, prefix
    self._storages = {}  # key -> 1-D array, shared by the tensors that view it.
    self._classes = {}

  def find_class(self, module, name):
    if (module, name) in _GLOBALS:
      return _GLOBALS[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name, _STORAGE_DTYPES[name])
    if module == "__torch__" or module.startswith("__torch__."):
      full = f"{module}.{name}"
      if full not in self._classes:
        self._classes[full] = type(name, (TorchObject,), {"type_name": full})
      return self._classes[full]
    raise ArchiveError(f"unsupported pickled global {module}.{name}")

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
      raise ArchiveError(f"unsupported persistent id {pid!r:.80}")
    _, storage_type, key, _location, numel = pid
    if not isinstance(storage_type, _StorageType):
      raise ArchiveError(f"unsupported storage type {storage_type!r:.80}")
    if key not in self._storages:
      self._storages[key] = _storage_array(self._archive, f"{self._prefix}data/{key}",
                                           storage_type, int(numel))
    return self._storages[key]


def _storage_array(archive: zipfile.ZipFile, entry: str, storage_type: _StorageType, numel: int):
  """The 1-D array of one storage entry (little-endian bytes; bfloat16 widened to float32)."""
  try:
    raw = archive.read(entry)
  except KeyError:
    raise ArchiveError(f"storage entry {entry} is missing") from None
  if len(raw) < numel * storage_type.dtype.itemsize:
    raise ArchiveError(f"storage entry {entry} holds {len(raw)} bytes, "
                       f"fewer than {numel} × {storage_type.dtype.itemsize}")
  array = np.frombuffer(raw, storage_type.dtype, count=numel).astype(
      storage_type.dtype.newbyteorder("="))
  if storage_type.name == "BFloat16Storage":
    array = (array.astype(np.uint32) << 16).view(np.float32)
  return array


def _data_pickle_name(archive: zipfile.ZipFile) -> str:
  """The archive's `<name>/data.pkl` entry (top level of its single folder)."""
  names = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
  if len(names) != 1:
    raise ArchiveError("no <name>/data.pkl entry: not a torch zip archive (torch.save or "
                       "torch.jit.save; the legacy non-zip torch format is not supported)")
  return names[0]


def read_archive(file) -> object:
  """The unpickled object tree of a torch zip archive (path or binary file object)."""
  try:
    archive = zipfile.ZipFile(file)
  except (zipfile.BadZipFile, OSError) as e:
    raise ArchiveError(f"not a zip archive ({e})") from None
  with archive:
    name = _data_pickle_name(archive)
    prefix = name[: -len("data.pkl")]
    if archive.namelist().count(prefix + "byteorder") and \
        archive.read(prefix + "byteorder").strip() != b"little":
      raise ArchiveError("big-endian archives are not supported")
    try:
      return _Unpickler(io.BytesIO(archive.read(name)), archive, prefix).load()
    except ArchiveError:
      raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError) as e:
      raise ArchiveError(f"{name} does not unpickle ({type(e).__name__}: {e})") from None


def read_code(file) -> dict[str, str]:
  """The TorchScript source files of an archive: {'code/__torch__/x.py': text} (empty if none)."""
  with zipfile.ZipFile(file) as archive:
    prefix = _data_pickle_name(archive)[: -len("data.pkl")]
    return {n[len(prefix):]: archive.read(n).decode("utf-8") for n in archive.namelist()
            if n.startswith(prefix + "code/") and n.endswith(".py")}


def flatten(tree, prefix: str = "") -> dict[str, np.ndarray]:
  """Every array in an object tree as {"path.to.weight": array}, walking objects, dicts, lists."""
  out = {}
  if isinstance(tree, np.ndarray):
    out[prefix] = tree
  elif isinstance(tree, TorchObject):
    out.update(flatten(tree.__dict__.get("state"), prefix))
  elif isinstance(tree, dict):
    for key, value in tree.items():
      out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
  elif isinstance(tree, (list, tuple)):
    for i, value in enumerate(tree):
      out.update(flatten(value, f"{prefix}.{i}" if prefix else str(i)))
  return out


def load_tensors(file) -> dict[str, np.ndarray]:
  """{"path.to.weight": np.ndarray} of a torch zip archive, read without torch."""
  return flatten(read_archive(file))
