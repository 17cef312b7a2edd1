"""Paths that may be local or on an object store (gs://...): one layer for every file jaxcolor reads or writes.

Every path (workdir, checkpoints, config.json, bins and prior, TensorBoard events, samples, data_dir,
prior_path, pretrained .h5 files, evaluation outputs, colorize inputs and outputs) goes through `path`, an
`etils.epath.Path`: the same layer Orbax and TFDS use, so gs:// (and the other schemes epath supports) works
wherever a local path does. Local paths keep `~` expansion and become absolute; remote ones stay URLs, and
`str(path)` is the full URL every error message shows.

Object stores have no atomic rename (a rename is copy + delete) but do publish an object only when its upload
completes. `write_atomic` uses that: the bytes are produced in memory, then written in one piece; locally
through a temp file and os.replace. Either way a reader sees the old content or the new, never a part.
"""
from __future__ import annotations

import glob
import io
import os
import re
import uuid
from collections.abc import Callable
from typing import IO, Union

from etils import epath

PathLike = Union[str, os.PathLike]


def is_remote(p: PathLike) -> bool:
  """True for URLs with a scheme (gs://bucket/..., s3://...), False for local paths."""
  return "://" in os.fspath(p)


def path(p: PathLike) -> epath.Path:
  """`p` as an epath.Path: local paths with ~ expanded and made absolute (Orbax needs that), URLs as given."""
  s = os.fspath(p)
  if is_remote(s):
    return epath.Path(s.rstrip("/") if s.count("/") > 2 else s)
  return epath.Path(os.path.abspath(os.path.expanduser(s)))


def write_atomic(p: PathLike, data: bytes | Callable[[IO[bytes]], object]) -> None:
  """Writes `data` (bytes, or a function writing into a file object) so that no reader sees a partial file.

  The content is produced in memory first, so a failing writer leaves the old file (or none) untouched.
  Local: a uniquely named temp file beside the target, flushed and fsynced, then os.replace. Object store:
  one object write, which the store publishes only once complete.
  """
  if callable(data):
    buf = io.BytesIO()
    data(buf)
    data = buf.getvalue()
  target = path(p)
  if is_remote(target):
    target.write_bytes(data)
    return
  tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
  try:
    with open(tmp, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, target)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def read_bytes(p: PathLike) -> bytes:
  """The whole file; FileNotFoundError names the full path or URL."""
  target = path(p)
  try:
    return target.read_bytes()
  except FileNotFoundError:
    raise FileNotFoundError(f"{target}: no such file") from None
  except Exception as e:  # tf.errors.NotFoundError from the TF backend is not a FileNotFoundError
    if type(e).__name__ == "NotFoundError":
      raise FileNotFoundError(f"{target}: no such file") from None
    raise


def open_bytes(p: PathLike) -> io.BytesIO:
  """The file's content as a seekable in-memory file (for np.load, h5py, PIL on any scheme)."""
  return io.BytesIO(read_bytes(p))


def readable(p: PathLike) -> str | io.BytesIO:
  """What PIL / h5py / np.load open: a local file by its path (read lazily, as much as needed), a remote one as
  an in-memory copy."""
  return open_bytes(p) if is_remote(p) else str(path(p))


def expand_glob(pattern: str) -> list[epath.Path]:
  """Files matching a glob pattern (`**` matches any number of folders), local or remote, sorted."""
  s = os.fspath(pattern)
  if not is_remote(s):
    return sorted(epath.Path(m) for m in glob.glob(os.path.expanduser(s), recursive=True) if os.path.isfile(m))
  scheme, rest = s.split("://", 1)
  bucket, _, rel = rest.partition("/")
  parts = rel.split("/")
  n = next((i for i, part in enumerate(parts) if any(c in part for c in "*?[")), len(parts))
  base = epath.Path(f"{scheme}://{bucket}").joinpath(*parts[:n])
  if n == len(parts):
    return [base] if base.is_file() else []
  if "**" not in parts[n:]:  # one listing per folder level: epath's glob
    return sorted(m for m in base.glob("/".join(parts[n:])) if m.is_file())
  regex = re.compile(_glob_regex("/".join(parts[n:])))
  found = []
  for folder, _, files in base.walk():
    for f in files:
      if regex.fullmatch(str((folder / f).relative_to(base))):
        found.append(folder / f)
  return sorted(found)


def _glob_regex(pattern: str) -> str:
  """A glob pattern as a regex over '/'-separated relative paths: `**/` any folders, `*` within one name."""
  out, i = [], 0
  while i < len(pattern):
    if pattern.startswith("**/", i):
      out.append("(?:.*/)?"); i += 3
    elif pattern.startswith("**", i):
      out.append(".*"); i += 2
    elif pattern[i] == "*":
      out.append("[^/]*"); i += 1
    elif pattern[i] == "?":
      out.append("[^/]"); i += 1
    elif pattern[i] == "[" and "]" in pattern[i + 1:]:
      j = pattern.index("]", i + 1)
      out.append("[" + pattern[i + 1:j].replace("!", "^", 1) + "]"); i = j + 1
    else:
      out.append(re.escape(pattern[i])); i += 1
  return "".join(out)
