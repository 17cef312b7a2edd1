"""Folder -> TFDS builds: decode checks, colorfulness filter, report of bad files, caching."""
import os
import pathlib
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from jaxcolor.data import folder_dataset as fd


def _png16_rgb(path: pathlib.Path, rgb16: np.ndarray) -> None:
  """Writes a 16-bit-per-channel RGB PNG (PIL cannot write those)."""
  h, w, _ = rgb16.shape
  raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
  chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
  header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bits, color type 2 = RGB
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                   + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_colorfulness_known_values():
  gray = np.full((8, 8, 3), 128, np.uint8)
  assert fd.colorfulness(gray) == 0.0
  red = np.zeros((8, 8, 3), np.uint8)
  red[..., 0] = 255  # rg = 255, yb = 127.5 everywhere: only the mean term
  assert fd.colorfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory, shared_data):
  """12 good Tiny-ImageNet photos plus one file of every bad or odd kind."""
  root = tmp_path_factory.mktemp("messy")
  good = sorted((shared_data / "tiny-imagenet-64" / "train").glob("n014*/*.JPEG"))[:12]
  assert len(good) == 12
  d = root / "cls"
  d.mkdir()
  for f in good:
    (d / f.name).symlink_to(f)
  rgb = np.asarray(Image.open(good[0]).convert("RGB"))  # (64, 64, 3)
  raw = good[1].read_bytes()
  (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
  (d / "truncated.jpg").write_bytes(raw[: len(raw) // 2])
  (d / "notes.jpg").write_text("this is not an image")
  Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg", quality=95)
  _png16_rgb(d / "deep16.png", rgb.astype(np.uint16) * 257)
  gray16 = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257
  Image.fromarray(gray16).save(d / "gray16.png")
  rgba = np.concatenate([rgb, np.full((64, 64, 1), 255, np.uint8)], -1)
  rgba[:8, :8, 3] = 0  # transparent corner -> white
  Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
  Image.fromarray(rgb).convert("L").save(d / "gray.jpg")
  Image.fromarray(rgb[:6, :6]).save(d / "tiny.png")
  Image.fromarray(np.tile(rgb, (1, 6, 1))[:20]).save(d / "wide.png")  # 384x20
  (root / ".hidden.jpg").write_text("ignored")
  return root


EXPECTED_BAD = {"corrupt.jpg": ("cannot decode", "not an image"), "truncated.jpg": "cannot decode",
                "notes.jpg": "not an image", "gray16.png": "grayscale", "gray.jpg": "grayscale",
                "tiny.png": "too small"}
EXPECTED_ODD_GOOD = {"cmyk.jpg", "deep16.png", "rgba.png", "wide.png"}


def test_check_image_converts_odd_modes(messy_folder):
  d = messy_folder / "cls"
  ref = np.asarray(Image.open(sorted(d.glob("n*.JPEG"))[0]).convert("RGB")).astype(int)
  for name in ("cmyk.jpg", "deep16.png", "rgba.png"):
    res = fd.check_image(d / name)
    assert res.reason is None and res.shape == (64, 64), (name, res.reason)
    img = np.asarray(Image.open(__import__("io").BytesIO(res.data)).convert("RGB")).astype(int)
    if name == "rgba.png":
      assert (img[:8, :8] == 255).all()  # transparent pixels composited on white
      img, want = img[8:, 8:], ref[8:, 8:]
    else:
      want = ref
    assert np.abs(img - want).mean() < 4, name
  assert fd.check_image(d / "gray16.png", min_colorfulness=0).shape == (64, 64)


def test_build_reports_bad_files_and_keeps_good(messy_folder, tmp_path):
  import tensorflow_datasets as tfds

  builder, report = fd.build_folder_dataset(messy_folder, tmp_path)
  bad = {pathlib.Path(s["path"]).name: s["reason"] for s in report.skipped}
  assert set(bad) == set(EXPECTED_BAD)
  for name, why in EXPECTED_BAD.items():
    assert bad[name].startswith(why), (name, bad[name])  # why: str or tuple of str
  assert report.num_examples == {"train": 12 + len(EXPECTED_ODD_GOOD)}
  assert (pathlib.Path(report.dataset_dir) / fd.REPORT_NAME).exists()
  names, shapes = set(), {}
  for ex in tfds.as_numpy(builder.as_dataset(split="train")):
    name = pathlib.Path(ex["file_name"].decode()).name
    names.add(name)
    shapes[name] = ex["image"].shape
    assert ex["image"].dtype == np.uint8 and ex["image"].shape[-1] == 3
  assert EXPECTED_ODD_GOOD <= names and not names & set(EXPECTED_BAD)
  assert shapes["wide.png"] == (20, 384, 3)
  # Built once: a second call reads the stored dataset and report.
  builder2, report2 = fd.build_folder_dataset(messy_folder, tmp_path)
  assert report2 == report and builder2.info.splits["train"].num_examples == len(names)


def test_discover_splits_layouts(tmp_path):
  for split in ("train", "val"):
    (tmp_path / "a" / split / "c1").mkdir(parents=True)
    (tmp_path / "a" / split / "c1" / "x.jpg").write_bytes(b"x")
  (tmp_path / "a" / "words.txt").write_text("outside the split folders")
  assert sorted(fd.discover_splits(tmp_path / "a")) == ["train", "val"]
  (tmp_path / "b" / "dogs").mkdir(parents=True)
  (tmp_path / "b" / "dogs" / "y.jpg").write_bytes(b"y")
  assert list(fd.discover_splits(tmp_path / "b")) == ["train"]
  with pytest.raises(FileNotFoundError, match="missing"):
    fd.discover_splits(tmp_path / "missing")


def test_all_bad_split_fails_with_clear_message(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  (src / "a.jpg").write_text("nope")
  with pytest.raises(ValueError, match=r"no usable images in split 'train'.*a\.jpg"):
    fd.build_folder_dataset(src, tmp_path / "data")


def test_a_build_another_process_finished_first_is_used(tmp_path, monkeypatch):
  """Two runs on one data_dir build the same folder at once; the one whose rename loses uses the winner's copy."""
  folder = tmp_path / "photos"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i in range(3):
    Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
  cls = fd._adhoc_builder_class()
  real = cls.download_and_prepare

  def lose_the_rename(self, *args, **kwargs):
    real(self, *args, **kwargs)  # the other process's copy lands at the destination ...
    raise FileExistsError("Destination ... already exists.")  # ... and our rename fails

  monkeypatch.setattr(cls, "download_and_prepare", lose_the_rename)
  builder, report = fd.build_folder_dataset(folder, tmp_path / "tfds")
  assert report.num_examples == {"train": 3} and builder.info.splits["train"].num_examples == 3

  monkeypatch.setattr(cls, "download_and_prepare", lambda self, *a, **k: (_ for _ in ()).throw(FileExistsError("x")))
  (folder / "3.png").write_bytes((folder / "0.png").read_bytes())  # a new file list: a new, unbuilt copy
  with pytest.raises(FileExistsError):  # nothing at the destination: the error is not swallowed
    fd.build_folder_dataset(folder, tmp_path / "tfds")


def test_identity_follows_contents_not_place_or_mtime(tmp_path, monkeypatch, caplog):
  """A copy elsewhere or a touched folder reuses the build, its report naming the skipped files where they are
  now; an unchanged folder is opened without reading a photo; a changed photo builds a fresh copy."""
  folder = tmp_path / "a" / "photos"
  folder.mkdir(parents=True)
  rng = np.random.default_rng(1)
  for i in range(3):
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
  (folder / "broken.png").write_bytes(b"not a photo")
  data_dir = tmp_path / "tfds"
  _, report = fd.build_folder_dataset(folder, data_dir)
  cls = fd._adhoc_builder_class()
  monkeypatch.setattr(cls, "download_and_prepare", lambda self, *a, **k: pytest.fail("rebuilt"))

  copy = tmp_path / "b" / "photos"
  shutil.copytree(folder, copy, copy_function=shutil.copyfile)  # new modification times
  for f in folder.iterdir():
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
  for root in (copy, folder):
    reused = fd.build_folder_dataset(root, data_dir)[1]
    assert reused.dataset_dir == report.dataset_dir and reused.root == str(root.resolve())
    assert [s["path"] for s in reused.skipped] == [str(root.resolve() / "broken.png")]

  monkeypatch.setattr(fd, "file_digest", lambda path: pytest.fail(f"{path} read again"))
  assert fd.build_folder_dataset(folder, data_dir)[1].dataset_dir == report.dataset_dir
  monkeypatch.undo()  # builds and reads allowed again

  pixels = np.asarray(Image.open(copy / "1.png"))
  Image.fromarray(255 - pixels).save(copy / "1.png")  # same name, other contents
  _, changed = fd.build_folder_dataset(copy, data_dir)
  assert changed.dataset_dir != report.dataset_dir and changed.num_examples == {"train": 3}
  assert "file-hash cache" not in caplog.text  # the cache was written each time
