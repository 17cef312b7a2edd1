"""Colorize photos: python -m jaxcolor.colorize INPUT... [--model=vivid|accurate | --workdir=RUN] [--out=DIR].

    python -m jaxcolor.colorize old_photo.jpg                       # the default reference model -> ./colorized
    python -m jaxcolor.colorize photos/ --model=accurate --out=/tmp/colorized
    python -m jaxcolor.colorize photo.jpg --model=guided --hints=hints.json --out=/tmp/guided   # color hints
    python -m jaxcolor.colorize --workdir=/tmp/w1 photos/ old/*.jpg --out=/tmp/colorized [--step=N]
        [--temperature=0.38] [--decoding=annealed_mean] [--size=S] [--batch_size=B] [--format=png|jpg]
        [--overwrite] [--sheet] [--max_pixels=100000000] [--writers=2] [--png_compress_level=6] [--no_propagation]

Without --workdir the photos are colorized by a reference model shipped inside the package (`jaxcolor.inference.reference`:
`vivid`, the default, `accurate` or `guided`); --workdir takes a run trained with `jaxcolor.main` instead.
--hints takes a person's color hints for a model that takes them (`guided`, or a run trained with hints):
a JSON list of {"x": 120, "y": 48, "color": "#2f6fd0"} in the photo's own pixels (optional "size" in pixels),
or, for several photos, such lists keyed by file name (`jaxcolor.inference.hint_file`). After the network, part
of its response to the hints is kept, pixels move by the residuals of the hints of similar lightness, and the
residuals left are carried along the photo's edges (`jaxcolor.hint_propagation`; off with --no_propagation).
INPUT is files, folders (searched recursively, hidden files skipped) or glob patterns, local or gs:// (as are
--workdir and --out: `jaxcolor.storage`). Each photo is decoded
with PIL (EXIF orientation applied; palette, CMYK, 16-bit and grayscale become RGB; an alpha channel is kept
and re-attached). The model sees the L of the photo resized to `size` x `size`; the predicted ab is upsampled
bilinearly to the full resolution and merged with the photo's own full-resolution L, so the output keeps every
detail of the input's lightness. Outputs are `<out>/<stem>.<format>` (PNG whenever there is alpha), plus
`<stem>_sheet.png` (input | output) with --sheet, encoded and written on --writers threads while the next
photos are colorized. Existing outputs are kept unless --overwrite. Unreadable files (and outputs that cannot
be written) are reported with the reason and skipped; the exit status is 1 if any input failed.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import os
import sys
import typing
from collections.abc import Sequence

import numpy as np
from etils import epath
from PIL import Image, ImageOps

from jaxcolor import run_dir, storage
from jaxcolor.inference import hint_file, reference
from jaxcolor.inference.colorizer import Colorizer, add_flip_flags  # noqa: F401  (re-exported: colorize.Colorizer)

DEFAULT_MAX_PIXELS = 100_000_000
FORMATS = {"png": "PNG", "jpg": "JPEG"}


@dataclasses.dataclass
class Result:
  """What happened to one input: status "done", "kept" (output existed) or "failed" (with `reason`).

  ("writing" only while its output is being written.)"""
  path: str
  status: str
  output: str | None = None
  reason: str | None = None


def expand_inputs(inputs: Sequence[str]) -> tuple[list[epath.Path], list[Result]]:
  """Files, folders (recursive) and globs, local or gs:// -> (files in order without repeats, failures for
  unmatched inputs)."""
  files, missing, seen = [], [], set()
  for item in inputs:
    p = storage.path(item)
    if p.is_dir():
      found = sorted(folder / name for folder, _, names in p.walk() for name in names
                     if not any(part.startswith(".") for part in (folder / name).relative_to(p).parts))
    elif p.is_file():
      found = [p]
    else:
      found = storage.expand_glob(item)
      if not found:
        missing.append(Result(item, "failed", reason="no such file, folder or matching glob"))
    for f in found:
      key = str(f) if storage.is_remote(f) else os.path.realpath(f)
      if key not in seen:
        seen.add(key)
        files.append(f)
  return files, missing


def load_photo(path: epath.Path | typing.BinaryIO, max_pixels: int) -> tuple[np.ndarray, np.ndarray | None]:
  """File (a path, or an open binary file such as an upload's bytes) -> (uint8 RGB (H, W, 3), uint8 alpha (H, W)
  or None); raises ValueError/OSError with the reason."""
  from jaxcolor.data.folder_dataset import _to_rgb
  try:
    img = Image.open(path if hasattr(path, "read") else storage.readable(path))
  except Image.UnidentifiedImageError as e:
    raise ValueError("not an image: unknown or unsupported format") from e
  with img:
    w, h = img.size
    if w * h > max_pixels:
      raise ValueError(f"too large: {w}x{h} = {w * h / 1e6:.1f} MP > --max_pixels {max_pixels / 1e6:.1f} MP")
    img = ImageOps.exif_transpose(img)  # returns a copy without the orientation tag: _to_rgb won't redo it
    alpha = None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
      alpha = np.asarray(img.convert("RGBA"))[..., 3].copy()
    rgb = _to_rgb(img)  # full decode: truncated files fail here
  return rgb, alpha


def merge(rgb: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
  """The photo's full-resolution L + ab upsampled bilinearly to its size -> uint8 RGB (H, W, 3) (`jaxcolor.inference.merge`)."""
  from jaxcolor.inference import merge as merge_lib
  return merge_lib.merge(rgb, ab_small)


def _save(path: epath.Path, rgb: np.ndarray, alpha: np.ndarray | None, fmt: str,
          png_compress_level: int = 6) -> None:
  img = Image.fromarray(rgb)
  if alpha is not None:
    img = img.convert("RGBA")
    img.putalpha(Image.fromarray(alpha))
  options = {"quality": 95} if fmt == "JPEG" else {"compress_level": png_compress_level}
  storage.write_atomic(path, lambda f: img.save(f, format=fmt, **options))  # never a half-written output


def _write(dst: epath.Path, rgb_out: np.ndarray, alpha: np.ndarray | None, fmt: str,
           sheet: tuple[epath.Path, np.ndarray] | None, level: int) -> None:
  _save(dst, rgb_out, alpha, "PNG" if alpha is not None else FORMATS[fmt], level)
  if sheet is not None:
    _save(sheet[0], np.concatenate([sheet[1], rgb_out], axis=1), None, "PNG", level)


def colorize_files(colorizer: Colorizer, inputs: Sequence[str], out_dir: str, *, batch_size: int = 8,
                   fmt: str = "png", overwrite: bool = False, sheet: bool = False,
                   max_pixels: int = DEFAULT_MAX_PIXELS, writers: int = 2, png_compress_level: int = 6,
                   hints: str | None = None, log=sys.stderr) -> list[Result]:
  """Colorizes every photo of `inputs` into `out_dir`; returns one Result per input, in input order (none raises).

  `hints`: a hints file (`hint_file`); a file that does not fit the photos (a list for several, keys naming no
  photo) raises HintError before anything is written; a bad hint fails only its photo.

  Encoding and writing the outputs (PNG: seconds for a 12 MP photo) runs on `writers` threads while the next
  photos are decoded and colorized; at most 2 x writers finished photos wait in memory. `png_compress_level`
  is zlib's 0-9 (6: Pillow's default; 1 encodes a 12 MP photo about 4x faster into a ~20% larger file).
  """
  if fmt not in FORMATS:
    raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
  if png_compress_level not in range(10):
    raise ValueError(f"png_compress_level must be 0-9, got {png_compress_level}")
  out = storage.path(out_dir)
  files, results = expand_inputs(inputs)
  per_photo = hint_file.for_photos(hint_file.load(hints), files, hints) if hints else [[] for _ in files]
  hints_of = {f: h for f, h in zip(files, per_photo)}
  if any(per_photo) and not colorizer.takes_hints:
    raise hint_file.HintError(f"{colorizer.source} does not take color hints ({colorizer.config.model}); use "
                              f"--model=guided or a run trained with hints")
  out.mkdir(parents=True, exist_ok=True)
  for r in results:
    print(f"FAILED {r.path}: {r.reason}", file=log)
  claimed: dict[epath.Path, epath.Path] = {}
  todo: list[tuple[epath.Path, epath.Path, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
  writing: collections.deque[tuple[Result, tuple[int, int], concurrent.futures.Future]] = collections.deque()
  n = len(files)
  done = 0

  def report(result: Result, message: str) -> None:
    nonlocal done
    done += 1
    print(f"[{done}/{n}] {message}" if result.status != "failed" else f"FAILED {result.path}: {result.reason}",
          file=log)

  def finish_writes(keep: int) -> None:  # oldest first, until at most `keep` are in flight
    while len(writing) > keep:
      result, (h, w), future = writing.popleft()
      try:
        future.result()
        result.status = "done"
        report(result, f"{result.path} -> {result.output} ({w}x{h})")
      except Exception as e:  # pylint: disable=broad-except  # e.g. disk full: report, go on
        result.status, result.reason = "failed", f"cannot write {result.output}: {type(e).__name__}: {e}"
        report(result, "")

  def flush(pool: concurrent.futures.Executor) -> None:
    abs_ = colorizer.predict_ab([t[2] for t in todo], batch_size, hints=[t[4] for t in todo])
    for (src, dst, rgb, alpha, _), ab in zip(todo, abs_):
      result = Result(str(src), "writing", str(dst))
      results.append(result)
      try:
        rgb_out = merge(rgb, ab)
      except Exception as e:  # pylint: disable=broad-except  # e.g. out of memory on a huge photo: go on
        result.status, result.reason = "failed", f"cannot colorize: {type(e).__name__}: {e}"
        report(result, "")
        continue
      sheet_to = (out / f"{src.stem}_sheet.png", rgb) if sheet else None
      writing.append((result, rgb.shape[:2], pool.submit(_write, dst, rgb_out, alpha, fmt, sheet_to,
                                                                png_compress_level)))
      finish_writes(keep=2 * writers)
    todo.clear()

  with concurrent.futures.ThreadPoolExecutor(max_workers=writers) as pool:
    for src in files:
      try:
        rgb, alpha = load_photo(src, max_pixels)
        given = (hint_file.channels(hints_of[src], rgb.shape[:2], colorizer.size, f"{hints}: ")
                 if hints_of[src] else None)
      except Exception as e:  # pylint: disable=broad-except  # PIL raises many types for bad files
        reason = str(e) if isinstance(e, ValueError) else f"cannot decode: {type(e).__name__}: {e}"
        results.append(Result(str(src), "failed", reason=reason))
        report(results[-1], "")
        continue
      dst = out / f"{src.stem}.{'png' if alpha is not None else fmt}"
      if dst in claimed:
        results.append(Result(str(src), "failed", reason=f"{claimed[dst]} already writes {dst} (same stem)"))
        report(results[-1], "")
        continue
      claimed[dst] = src
      if dst.exists() and not overwrite:
        results.append(Result(str(src), "kept", str(dst)))
        report(results[-1], f"{src}: kept existing {dst} (use --overwrite to replace)")
        continue
      todo.append((src, dst, rgb, alpha, given))
      if len(todo) == batch_size:
        flush(pool)
    if todo:
      flush(pool)
    finish_writes(keep=0)
  return results


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxcolor.colorize", description=__doc__.splitlines()[0])
  p.add_argument("inputs", nargs="+", help="photos, folders (recursive) or glob patterns")
  p.add_argument("--workdir", default=None, help="a training run directory (default: a reference model)")
  p.add_argument("--model", default=None, choices=sorted(run_dir.REFERENCE_MODELS),
                 help=f"a reference model shipped with jaxcolor (default without --workdir: {reference.DEFAULT})")
  p.add_argument("--out", default=None, help="output folder (default: ./colorized)")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
  p.add_argument("--temperature", type=float, default=None, help="classification decoding temperature")
  p.add_argument("--decoding", default=None, choices=("mode", "mean", "annealed_mean"), help="classification decoding (default: the run's)")
  p.add_argument("--size", type=int, default=None,
                 help="model input size (default: the model's inference_size, else its training image_size)")
  p.add_argument("--hints", default=None, help="a JSON file of color hints (models that take them: --model=guided)")
  p.add_argument("--no_propagation", action="store_true", help="use the network's colors alone: no blend and no "
                 "hints' residuals carried by lightness and along the photo's edges after it "
                 "(jaxcolor.hint_propagation)")
  add_flip_flags(p)
  p.add_argument("--batch_size", type=int, default=8)
  p.add_argument("--format", default="png", choices=sorted(FORMATS))
  p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
  p.add_argument("--sheet", action="store_true", help="also write <stem>_sheet.png (input | output)")
  p.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
  p.add_argument("--writers", type=int, default=2, help="threads encoding and writing outputs")
  p.add_argument("--png_compress_level", type=int, default=6, choices=range(10), metavar="0-9",
                 help="zlib level of PNG outputs: 1 is ~4x faster to encode than 6, files ~20%% larger")
  args = p.parse_args(argv)
  if args.out is None:
    args.out = "colorized"
  if args.temperature is not None and args.temperature <= 0:
    p.error(f"--temperature must be > 0, got {args.temperature}")
  if args.batch_size <= 0:
    p.error(f"--batch_size must be > 0, got {args.batch_size}")
  if args.writers <= 0:
    p.error(f"--writers must be > 0, got {args.writers}")
  if args.workdir and args.model:
    p.error("give --workdir (a trained run) or --model (a reference model), not both")
  try:
    if args.workdir:
      colorizer = Colorizer(args.workdir, step=args.step, size=args.size, temperature=args.temperature,
                            decoding=args.decoding, propagate=not args.no_propagation, flip=args.flip)
    else:
      colorizer = Colorizer.reference(args.model or reference.DEFAULT, size=args.size,
                                      temperature=args.temperature, decoding=args.decoding,
                                      propagate=not args.no_propagation, flip=args.flip)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  try:
    results = colorize_files(colorizer, args.inputs, args.out, batch_size=args.batch_size, fmt=args.format,
                             overwrite=args.overwrite, sheet=args.sheet, max_pixels=args.max_pixels,
                             writers=args.writers, png_compress_level=args.png_compress_level, hints=args.hints)
  except hint_file.HintError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  count = {s: sum(r.status == s for r in results) for s in ("done", "kept", "failed")}
  print(f"{count['done']} colorized, {count['kept']} kept, {count['failed']} failed", file=sys.stderr)
  for r in results:
    if r.status == "failed":
      print(f"  failed: {r.path}: {r.reason}", file=sys.stderr)
  return 1 if count["failed"] else 0


if __name__ == "__main__":
  sys.exit(main())
