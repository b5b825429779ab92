"""The torch-free reader of torch zip archives, on tiny archives written here with zipfile + pickle.

The archives are written the way torch writes them (its globals pickled by name, storages as
persistent ids, raw little-endian bytes under <name>/data/<key>), using stand-in modules named
torch, torch._utils and torch.jit._pickle that exist only while the test pickles.
"""

import collections
import io
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from genimg_jax.evaluation import torchscript


class Storage:
  """A storage to pickle: key, numpy 1-D data (its dtype picks torch.<X>Storage)."""

  def __init__(self, key, data):
    self.key, self.data = key, data


class Tensor:
  """A tensor view to pickle: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

  def __init__(self, storage, offset, size, stride):
    self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

  def __reduce__(self):
    return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


class IntList(list):
  """A list TorchScript pickles as torch.jit._pickle.build_intlist([...])."""

  def __reduce__(self):
    return (sys.modules["torch.jit._pickle"].build_intlist, (list(self),))


_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float16): "HalfStorage",
                  np.dtype(np.int64): "LongStorage", np.dtype(np.float64): "DoubleStorage"}


def _stand_in_modules(monkeypatch):
  """sys.modules entries so pickle can save torch's globals by name; returns the class maker."""
  def named(module, name, obj):
    obj.__module__, obj.__qualname__, obj.__name__ = module, name, name
    setattr(sys.modules[module], name, obj)
    return obj

  for module in ("torch", "torch._utils", "torch.jit", "torch.jit._pickle", "__torch__",
                 "__torch__.tiny"):
    monkeypatch.setitem(sys.modules, module, types.ModuleType(module))
  named("torch._utils", "_rebuild_tensor_v2", lambda *a: None)
  named("torch.jit._pickle", "build_intlist", lambda *a: None)
  for name in _STORAGE_NAMES.values():
    named("torch", name, type(name, (), {}))
  return lambda name: named("__torch__.tiny", name, type(name, (), {}))


def write_archive(path, tree, monkeypatch, folder="tiny"):
  """Writes `tree` as torch would (data.pkl + data/<key> + a code/ file); returns path."""
  storages = {}

  class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
      if isinstance(obj, Storage):
        storages[obj.key] = obj.data
        kind = getattr(sys.modules["torch"], _STORAGE_NAMES[obj.data.dtype])
        return ("storage", kind, obj.key, "cpu", obj.data.size)
      return None

  buffer = io.BytesIO()
  Pickler(buffer, protocol=2).dump(tree)
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr(f"{folder}/data.pkl", buffer.getvalue())
    archive.writestr(f"{folder}/code/__torch__/tiny.py", "class Net(Module):\n  pass\n")
    archive.writestr(f"{folder}/version", "3\n")
    for key, data in storages.items():
      archive.writestr(f"{folder}/data/{key}", data.astype(data.dtype.newbyteorder("<")).tobytes())
  return path


def module_object(cls, state):
  """An instance of a stand-in __torch__ class whose pickled state is `state` (like a module)."""
  obj = cls.__new__(cls)
  obj.__dict__.update(state)
  return obj


@pytest.fixture
def tiny_archive(tmp_path, monkeypatch):
  """An archive with a strided view, a shared storage, float16, an int list and nested modules."""
  make_class = _stand_in_modules(monkeypatch)
  net, conv = make_class("Net"), make_class("Conv")
  base = Storage("0", np.arange(10, dtype=np.float32) * 1.5)
  half = Storage("1", np.array([0.5, -2.0, 65504.0], np.float16))
  tree = module_object(net, {
      "training": False,
      "conv": module_object(conv, {
          "weight": Tensor(base, 1, (2, 3), (1, 2)),  # Transposed, offset view.
          "bias": Tensor(base, 7, (3,), (1,)),  # Same storage, later offset.
          "padding": IntList([0, 3])}),
      "half": Tensor(half, 0, (3,), (1,)),
      "scalar": Tensor(Storage("2", np.array([4, 5], np.int64)), 1, (), ()),
      "stats": collections.OrderedDict(count=Tensor(Storage("3", np.ones(1, np.float64)), 0,
                                                    (1,), (1,)))})
  return write_archive(tmp_path / "tiny.pt", tree, monkeypatch)


def test_tensors_rebuilt_from_strides_offsets_and_dtypes(tiny_archive):
  tensors = torchscript.load_tensors(tiny_archive)
  base = np.arange(10, dtype=np.float32) * 1.5
  weight = np.array([[base[1 + i * 1 + j * 2] for j in range(3)] for i in range(2)])
  assert set(tensors) == {"conv.weight", "conv.bias", "half", "scalar", "stats.count"}
  np.testing.assert_array_equal(tensors["conv.weight"], weight)
  assert tensors["conv.weight"].dtype == np.float32 and tensors["conv.weight"].shape == (2, 3)
  np.testing.assert_array_equal(tensors["conv.bias"], base[7:10])
  np.testing.assert_array_equal(tensors["half"], np.array([0.5, -2.0, 65504.0], np.float16))
  assert tensors["half"].dtype == np.float16
  assert tensors["scalar"].shape == () and tensors["scalar"] == 5
  assert tensors["stats.count"].dtype == np.float64


def test_object_tree_keeps_types_and_attributes(tiny_archive):
  root = torchscript.read_archive(tiny_archive)
  assert root.type_name == "__torch__.tiny.Net"
  assert root.conv.type_name == "__torch__.tiny.Conv"
  assert root.conv.padding == [0, 3] and root.training is False
  assert "code/__torch__/tiny.py" in torchscript.read_code(tiny_archive)


def test_rejects_non_archives_and_foreign_globals(tmp_path, monkeypatch):
  not_zip = tmp_path / "x.pt"
  not_zip.write_bytes(b"\x80\x02 legacy torch pickle")
  with pytest.raises(torchscript.ArchiveError, match="not a zip"):
    torchscript.read_archive(not_zip)
  no_pickle = tmp_path / "y.pt"
  with zipfile.ZipFile(no_pickle, "w") as archive:
    archive.writestr("y/other.txt", "")
  with pytest.raises(torchscript.ArchiveError, match="data.pkl"):
    torchscript.read_archive(no_pickle)
  # A pickle that would run os.system on load must be refused, not executed.
  evil = tmp_path / "evil.pt"
  with zipfile.ZipFile(evil, "w") as archive:
    archive.writestr("e/data.pkl", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.")
  with pytest.raises(torchscript.ArchiveError, match="unsupported pickled global os.system"):
    torchscript.read_archive(evil)


def test_rejects_a_tensor_past_its_storage(tmp_path, monkeypatch):
  make_class = _stand_in_modules(monkeypatch)
  tree = module_object(make_class("Net"), {
      "w": Tensor(Storage("0", np.zeros(4, np.float32)), 2, (2, 2), (2, 1))})
  path = write_archive(tmp_path / "bad.pt", tree, monkeypatch)
  with pytest.raises(torchscript.ArchiveError, match="runs past its storage"):
    torchscript.read_archive(path)
