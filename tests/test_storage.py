"""jaxcolor.storage on local paths (gs:// against a GCS API on localhost: tests/test_gcs.py)."""
import re

import pytest

from jaxcolor import storage


def test_path_expands_local_paths_and_keeps_urls(monkeypatch, tmp_path):
  monkeypatch.setenv("HOME", str(tmp_path))
  monkeypatch.chdir(tmp_path)
  assert str(storage.path("~/runs/a")) == str(tmp_path / "runs" / "a")
  assert str(storage.path("runs/b")) == str(tmp_path / "runs" / "b")  # absolute: Orbax needs that
  assert str(storage.path("gs://bucket/run/")) == "gs://bucket/run"
  assert str(storage.path("gs://bucket/run") / "config.json") == "gs://bucket/run/config.json"
  assert storage.is_remote("gs://b/x") and storage.is_remote(storage.path("gs://b/x"))
  assert not storage.is_remote("/tmp/gs:/x") and not storage.is_remote(tmp_path)


def check_write_atomic(folder: str) -> None:
  """write_atomic in `folder` (local or gs://): the new content whole, or (the writer failing midway) the old
  content untouched, and no temporary file or object left beside it."""
  target = storage.path(folder) / "config.json"
  target.parent.mkdir(parents=True, exist_ok=True)
  storage.write_atomic(target, b"old")

  def failing(f):
    f.write(b"half")
    raise RuntimeError("killed")
  with pytest.raises(RuntimeError, match="killed"):
    storage.write_atomic(target, failing)
  assert storage.read_bytes(target) == b"old"
  storage.write_atomic(str(target), lambda f: f.write(b"new"))
  assert storage.read_bytes(target) == b"new"
  assert sorted(p.name for p in target.parent.iterdir()) == ["config.json"]


def test_write_atomic_publishes_whole_files_only(tmp_path):
  check_write_atomic(str(tmp_path / "run"))
  with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "absent.npz"))):
    storage.read_bytes(tmp_path / "absent.npz")
  assert storage.readable(tmp_path / "run" / "config.json") == str(tmp_path / "run" / "config.json")  # opened lazily


def test_expand_glob_matches_like_the_shell(tmp_path):
  for rel in ("a.png", "b.jpg", "sub/c.png", "sub/deeper/d.png"):
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).write_bytes(b"x")
  names = lambda pattern: [str(p.relative_to(tmp_path)) for p in storage.expand_glob(str(tmp_path / pattern))]
  assert names("*.png") == ["a.png"]
  assert names("**/*.png") == ["a.png", "sub/c.png", "sub/deeper/d.png"]
  assert names("sub/*") == ["sub/c.png"]  # files only
  assert names("b.jpg") == ["b.jpg"] and names("nothing*") == []


@pytest.mark.parametrize("pattern, yes, no", [
    ("**/*.png", ["a.png", "x/a.png", "x/y/a.png"], ["a.jpg", "x/a.png/b"]),
    ("*.png", ["a.png"], ["x/a.png"]),
    ("x/**", ["x/a", "x/y/z"], ["y/a"]),
    ("p?[0-9].[!j]*", ["pa1.png"], ["pa1.jpg", "pab.png"]),
])
def test_remote_glob_regex(pattern, yes, no):
  """The pattern language expand_glob uses on buckets (where epath's glob has no `**`): as the shell's."""
  regex = re.compile(storage._glob_regex(pattern))
  assert all(regex.fullmatch(s) for s in yes) and not any(regex.fullmatch(s) for s in no)
