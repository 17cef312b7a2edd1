"""A nested tree of arrays as one .npz file, keyed by '/'-joined paths, read back without pickle.

The one format for model variables on disk outside Orbax checkpoints: a shipped reference model's
`variables.npz` ("params/down0/conv0/Conv_0/kernel", ...) and converted pretrained encoder weights (the
EfficientNet-Lite cache). Plain numpy: `np.load(..., allow_pickle=False)` refuses object arrays, so reading a
file runs no code from it. Empty subtrees (a model without BatchNorm has `batch_stats == {}`) are not stored.
"""
from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxcolor import storage

SEP = "/"


def flatten(tree: Mapping[str, Any]) -> dict[str, Any]:
  """Nested mappings (dicts, flax FrozenDicts, Orbax's dicts) -> {"a/b/c": leaf}; empty subtrees drop out."""
  flat: dict[str, Any] = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      flat.update({f"{key}{SEP}{k}": v for k, v in flatten(value).items()})
    else:
      flat[str(key)] = value
  return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
  """The inverse of `flatten`: {"a/b/c": leaf} -> nested plain dicts."""
  tree: dict[str, Any] = {}
  for key, value in flat.items():
    *parents, leaf = key.split(SEP)
    node = tree
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


def save_tree(path: str | os.PathLike, tree: Mapping[str, Any], dtype: str | None = None) -> None:
  """Writes the arrays of `tree` as one compressed .npz, whole or not at all (local or gs://).

  dtype="float16" stores floating arrays at half the size; `load_tree` returns them as float32.
  """
  flat = flatten(tree)
  if not flat:
    raise ValueError(f"{path}: no arrays to save")
  def stored(value: Any) -> np.ndarray:
    value = np.asarray(value)
    return value.astype(dtype) if dtype and np.issubdtype(value.dtype, np.floating) else value
  storage.write_atomic(path, lambda f: np.savez_compressed(f, **{k: stored(v) for k, v in flat.items()}))


def load_tree(path: str | os.PathLike) -> dict[str, Any]:
  """Reads `save_tree` output -> nested dicts of numpy arrays (float16 ones as float32); never unpickles."""
  try:
    loaded = np.load(storage.open_bytes(path), allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
      raise ValueError("a single array (.npy), not an .npz")
    with loaded as f:
      flat = {k: _widened(f[k]) for k in f.files}
  except FileNotFoundError:
    raise
  except (OSError, ValueError, zipfile.BadZipFile) as e:  # object arrays, a .npy, a damaged archive
    raise ValueError(f"{path}: not an .npz of arrays written by jaxcolor ({e})") from e
  return unflatten(flat)


def _widened(value: np.ndarray) -> np.ndarray:
  """float16 (the half-size storage of `save_tree`) -> float32; anything else as stored."""
  return value.astype(np.float32) if value.dtype == np.float16 else value
