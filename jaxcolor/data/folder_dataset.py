"""Local photo folders -> TFDS datasets in `data_dir`, built once, with a report of bad files.

Why: a user's own photos should be read exactly like any TFDS dataset (sharding by
`tfds.split_for_jax_process`, deterministic file shuffling), and every photo should be checked
once, at build time, instead of failing or silently teaching gray targets during training.

Layout: if every sub-folder of `root` is a split name (train, val, validation, test, eval), each
becomes a split; otherwise the whole tree is the split "train" (slice it, e.g. "train[:95%]").
Files are found recursively (class folders are fine); hidden files are ignored.

Every file is opened with PIL and converted to 8-bit RGB (CMYK, 16-bit, palette, RGBA over
white, EXIF rotation). A file is skipped, and listed with its reason in `folder_report.json`
next to the built dataset, when it cannot be decoded (corrupt, truncated, not an image), when its
short side is below `min_side`, or when its colorfulness is below `min_colorfulness` (gray
photos would teach the model gray targets). Good RGB JPEG/PNG files are stored byte-for-byte;
others are re-encoded as lossless PNG.

The dataset identity (its TFDS config name) hashes each file's path relative to the folder and its
contents, and the filter settings: adding, removing, renaming or changing a photo builds a fresh copy, while
the same photos elsewhere or with new modification times (a copy to a node's local disk, a checkout, an
rsync without -t) reuse the build. Each file's content hash is remembered by its path, size and modification
time in `file_hashes.json` beside the builds (`HASH_CACHE`), so an unchanged folder is opened without reading
a photo, and a moved or touched one is read once (far less than a rebuild, which decodes every photo).
CLI: `python -m jaxcolor.data.folder_dataset PATH --data_dir DIR`.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
import pathlib
import re
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from etils import epath
from PIL import Image, ImageOps

from jaxcolor import storage

SPLIT_DIR_NAMES = ("train", "val", "validation", "test", "eval")
REPORT_NAME = "folder_report.json"
HASH_CACHE = "file_hashes.json"  # per dataset name: abs path -> [size, mtime_ns, sha1]
VERSION = "1.0.0"
DEFAULT_MIN_SIDE = 16
DEFAULT_MIN_COLORFULNESS = 2.0


def colorfulness(rgb: np.ndarray) -> float:
  """Hasler & Suesstrunk (2003) colorfulness of an RGB image (H, W, 3) in [0, 255]; 0 for gray."""
  x = np.asarray(rgb, np.float64)
  rg = x[..., 0] - x[..., 1]  # (H, W)
  yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]  # (H, W)
  return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


@dataclasses.dataclass
class CheckedImage:
  """Outcome of checking one file: `data` (bytes to store) when good, else `reason`."""
  path: str
  data: bytes | None = None
  reason: str | None = None
  shape: tuple[int, int] | None = None  # (H, W) when decodable


@dataclasses.dataclass
class FolderReport:
  """What a build kept and skipped; written as JSON next to the dataset."""
  root: str
  dataset_dir: str
  num_examples: dict[str, int]
  skipped: list[dict[str, str]]  # [{"path", "split", "reason"}]

  def save(self, path: epath.Path) -> None:
    storage.write_atomic(path, json.dumps(dataclasses.asdict(self), indent=1).encode())

  @classmethod
  def load(cls, path: epath.Path) -> "FolderReport":
    return cls(**json.loads(storage.read_bytes(path)))

  def moved_to(self, root: str | os.PathLike, dataset_dir: epath.Path) -> "FolderReport":
    """This report for the same photos found under `root`, its build read from `dataset_dir` (a build is reused
    for a copy of its folder: the same relative paths and contents), so files are named where they are now."""
    where = lambda p: str(pathlib.Path(root) / os.path.relpath(p, self.root))
    return dataclasses.replace(self, root=str(root), dataset_dir=str(dataset_dir),
                               skipped=[{**s, "path": where(s["path"])} for s in self.skipped])


def _to_rgb(img: Image.Image) -> np.ndarray:
  """Any PIL mode -> uint8 (H, W, 3); 16-bit/32-bit gray is rescaled, alpha composited on white."""
  img = ImageOps.exif_transpose(img)
  if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
    a = np.asarray(img, np.float64)
    top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
    a = np.clip(np.round(a * (255.0 / top)), 0, 255).astype(np.uint8)
    return np.repeat(a[..., None], 3, axis=-1)
  if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
  return np.asarray(img.convert("RGB"))


def check_image(path: str | os.PathLike, *, min_side: int = DEFAULT_MIN_SIDE,
                min_colorfulness: float = DEFAULT_MIN_COLORFULNESS) -> CheckedImage:
  """Decodes one file fully and decides whether (and as which bytes) it enters the dataset."""
  path = str(path)
  try:
    raw = pathlib.Path(path).read_bytes()
    with Image.open(io.BytesIO(raw)) as img:
      fmt, mode = img.format, img.mode
      exif_rotated = img.getexif().get(0x0112, 1) not in (0, 1)
      rgb = _to_rgb(img)  # (H, W, 3) uint8; forces a full decode (catches truncation)
  except Image.UnidentifiedImageError:
    return CheckedImage(path, reason="not an image: unknown or unsupported format")
  except Exception as e:  # PIL raises many types for bad files; all mean "skip and report".
    return CheckedImage(path, reason=f"cannot decode: {type(e).__name__}: {e}")
  h, w = rgb.shape[:2]
  if min(h, w) < min_side:
    return CheckedImage(path, reason=f"too small: {w}x{h} < min_side {min_side}", shape=(h, w))
  cf = colorfulness(rgb)
  if cf < min_colorfulness:
    return CheckedImage(path, reason=f"grayscale: colorfulness {cf:.2f} < {min_colorfulness}",
                        shape=(h, w))
  if fmt in ("JPEG", "PNG") and mode == "RGB" and not exif_rotated:
    data = raw  # stored as is: no re-encoding loss, TF decodes it directly
  else:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    data = buf.getvalue()
  return CheckedImage(path, data=data, shape=(h, w))


def _is_hidden(p: pathlib.Path, root: pathlib.Path) -> bool:
  return any(part.startswith(".") for part in p.relative_to(root).parts)


def discover_splits(root: str | os.PathLike) -> dict[str, list[pathlib.Path]]:
  """Maps split name -> sorted files under `root` (see module docstring for the layout rule)."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise FileNotFoundError(f"image folder {root} does not exist or is not a directory")
  subdirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
  if subdirs and all(d.name in SPLIT_DIR_NAMES for d in subdirs):
    tops = {d.name: d for d in subdirs}
  else:
    tops = {"train": root}
  splits = {}
  for name, top in sorted(tops.items()):
    files = sorted(p for p in top.rglob("*") if p.is_file() and not _is_hidden(p, root))
    if not files:
      raise ValueError(f"split '{name}' of image folder {root} has no files under {top}")
    splits[name] = files
  return splits


def file_digest(path: pathlib.Path) -> str:
  """sha1 of a file's bytes, read in 1 MiB blocks."""
  h = hashlib.sha1()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def content_hashes(files: Sequence[pathlib.Path], cache_path: epath.Path) -> list[str]:
  """Each file's `file_digest`, read only where `cache_path` has no entry with the file's current size and
  modification time. The cache is rewritten when anything changed, keeping other files' entries while those
  files exist (another copy of the folder). A cache that cannot be read is ignored, and one that cannot be
  written only costs the reads again next time."""
  try:
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
  except (OSError, ValueError):
    cache = {}
  cache = cache if isinstance(cache, dict) else {}
  current, digests = {}, []
  for f in files:
    st, key = f.stat(), os.path.abspath(f)
    hit = cache.get(key)
    same = isinstance(hit, list) and len(hit) == 3 and hit[:2] == [st.st_size, st.st_mtime_ns]
    digests.append(hit[2] if same else file_digest(f))
    current[key] = [st.st_size, st.st_mtime_ns, digests[-1]]
  if any(cache.get(k) != v for k, v in current.items()):
    fresh = {k: v for k, v in cache.items() if k not in current and os.path.exists(k)} | current
    try:
      cache_path.parent.mkdir(parents=True, exist_ok=True)
      storage.write_atomic(cache_path, json.dumps(fresh).encode())
    except OSError as e:
      logging.warning("could not write the file-hash cache %s: %s", cache_path, e)
  return digests


def _fingerprint(files_by_split: Mapping[str, Sequence[pathlib.Path]], root: pathlib.Path, extra: str,
                 cache_path: epath.Path) -> str:
  """12 hex digits from the filter settings (`extra`) and each split's files: relative path and contents."""
  named = [(split, f) for split, files in sorted(files_by_split.items()) for f in files]
  h = hashlib.sha1(extra.encode())
  for (split, f), digest in zip(named, content_hashes([f for _, f in named], cache_path)):
    h.update(f"{split}\0{os.path.relpath(f, root)}\0{digest}\n".encode())
  return h.hexdigest()[:12]


def _dataset_name(root: pathlib.Path) -> str:
  slug = re.sub(r"[^a-z0-9]+", "_", root.resolve().name.lower()).strip("_") or "root"
  return f"folder_{slug}"


def _dataset_dir(data_dir: epath.Path, name: str, config: str) -> epath.Path:
  return data_dir / name / config / VERSION


@functools.cache
def _adhoc_builder_class():
  """TFDS's AdhocBuilder without the source-code lookup of download checksums.

  That lookup needs the optional `importlib_resources` package on some installs and is useless
  here (nothing is downloaded), so `code_path` is pinned to None.
  """
  import tensorflow_datasets as tfds

  class _FolderBuilder(tfds.dataset_builders.AdhocBuilder, skip_registration=True):
    code_path = None

  return _FolderBuilder


def build_from_files(name: str, files_by_split: Mapping[str, Sequence[pathlib.Path]],
                     data_dir: str | os.PathLike, *, root: str | os.PathLike | None = None,
                     min_side: int = DEFAULT_MIN_SIDE,
                     min_colorfulness: float = DEFAULT_MIN_COLORFULNESS,
                     num_threads: int = 4):
  """Builds (once) a TFDS dataset `name` from explicit files; returns (builder, report)."""
  import tensorflow_datasets as tfds  # lazy: only dataset building needs TF

  data_dir = storage.path(data_dir)  # local or gs://: the photos are local, the dataset may go to a bucket
  root = pathlib.Path(root) if root is not None else pathlib.Path(os.path.commonpath(
      [str(f) for fs in files_by_split.values() for f in fs]))
  config = "c" + _fingerprint(files_by_split, root, f"{min_side}|{min_colorfulness}|{VERSION}",
                             data_dir / name / HASH_CACHE)
  ds_dir = _dataset_dir(data_dir, name, config)
  report_path = ds_dir / REPORT_NAME
  if (ds_dir / "dataset_info.json").exists() and report_path.exists():
    return tfds.builder_from_directory(str(ds_dir)), FolderReport.load(report_path).moved_to(root, ds_dir)

  skipped: list[dict[str, str]] = []
  kept: dict[str, int] = {}

  def examples(split: str, files: Sequence[pathlib.Path]) -> Iterator[tuple[str, dict]]:
    """Yields (key, example) for good files, in chunks so memory stays bounded."""
    kept[split] = 0
    check = lambda f: check_image(f, min_side=min_side, min_colorfulness=min_colorfulness)
    with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
      for start in range(0, len(files), 512):
        chunk = files[start:start + 512]
        for f, res in zip(chunk, pool.map(check, chunk)):
          rel = os.path.relpath(f, root)
          if res.data is None:
            skipped.append({"path": str(f), "split": split, "reason": res.reason})
            continue
          kept[split] += 1
          yield rel, {"image": res.data, "file_name": rel}
    if not kept[split]:
      bad = [s for s in skipped if s["split"] == split][:5]
      raise ValueError(f"no usable images in split '{split}' of {root}; first problems: {bad}")

  split_examples = {s: examples(s, list(fs)) for s, fs in files_by_split.items()}
  features = tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8),
      "file_name": tfds.features.Text(),
  })
  builder = _adhoc_builder_class()(
      name=name, version=VERSION, config=config, features=features,
      split_datasets=split_examples, data_dir=str(data_dir),
      description=f"Photos from {root} (min_side={min_side}, "
                  f"min_colorfulness={min_colorfulness}).")
  try:
    builder.download_and_prepare()
  except FileExistsError:  # another process (a second run on this data_dir) finished the same build first
    if not (ds_dir / "dataset_info.json").exists():
      raise
    logging.info("%s was built by another process meanwhile; using it", ds_dir)
  report = FolderReport(root=str(root), dataset_dir=str(ds_dir), num_examples=kept,
                        skipped=skipped)
  report.save(report_path)
  return tfds.builder_from_directory(str(ds_dir)), report


def build_folder_dataset(root: str | os.PathLike, data_dir: str | os.PathLike, *,
                         min_side: int = DEFAULT_MIN_SIDE,
                         min_colorfulness: float = DEFAULT_MIN_COLORFULNESS,
                         num_threads: int = 4):
  """Builds (once) the photos under `root` into `data_dir`; returns (tfds builder, report)."""
  root = pathlib.Path(root).expanduser().resolve()
  return build_from_files(_dataset_name(root), discover_splits(root), data_dir, root=root,
                          min_side=min_side, min_colorfulness=min_colorfulness,
                          num_threads=num_threads)


def main(argv: Sequence[str] | None = None) -> None:
  p = argparse.ArgumentParser(prog="python -m jaxcolor.data.folder_dataset",
                              description="Build a photo folder into a TFDS dataset (data_dir local or gs://).")
  p.add_argument("root")
  p.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  p.add_argument("--min_side", type=int, default=DEFAULT_MIN_SIDE)
  p.add_argument("--min_colorfulness", type=float, default=DEFAULT_MIN_COLORFULNESS)
  args = p.parse_args(argv)
  _, report = build_folder_dataset(args.root, args.data_dir, min_side=args.min_side,
                                   min_colorfulness=args.min_colorfulness)
  print(f"built {report.dataset_dir}: {report.num_examples}; skipped {len(report.skipped)}")
  for s in report.skipped:
    print(f"  {s['path']}: {s['reason']}")
  # Machines without the photos (TPU pod workers) read the build by its TFDS name from the same data_dir.
  name, config = report.dataset_dir.rstrip("/").split("/")[-3:-1]
  print(f"read it anywhere with: --config.dataset=tfds:{name}/{config} --config.data_dir={args.data_dir}")


if __name__ == "__main__":
  main()
