"""A person's color hints for `colorize --hints=hints.json`: reading, checking and placing them on the model's input.

The file is JSON, in the photo's own pixel coordinates at full resolution (x to the right, y down, from 0):
  one photo:   [{"x": 120, "y": 48, "color": "#2f6fd0"}, {"x": 300, "y": 200, "color": [40, 160, 60], "size": 12}]
  several:     {"beach.jpg": [...], "portrait": [...]}   keyed by file name or stem; photos without a key get none.
"color" is "#rrggbb", "#rgb" or [r, g, b] (0-255); the hint is that color's ab (its lightness is the photo's).
"size" is the side of the hinted square in full-resolution pixels (default: 3 pixels at the model's input
size). A list for several photos, a point outside its photo, or an unreadable color is an error naming the
file, the hint and the problem (`HintError`); colorize then skips that photo and goes on with the others.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxcolor import storage

DEFAULT_MODEL_PIXELS = 3  # a hint without "size" covers 3 x 3 pixels of the model's input


class HintError(ValueError):
  """A hints file or one of its hints is unusable; the message names where and why."""


@dataclasses.dataclass(frozen=True)
class Hint:
  """One hint: center (x, y) in full-resolution pixels, color as uint8 RGB, square side in pixels (or None)."""
  x: float
  y: float
  rgb: tuple[int, int, int]
  size: float | None = None


def parse_color(value: Any) -> tuple[int, int, int]:
  """"#2f6fd0", "#26d" or [47, 111, 208] -> (47, 111, 208); raises HintError otherwise."""
  if isinstance(value, str):
    text = value.strip().lstrip("#")
    if len(text) == 3:
      text = "".join(c * 2 for c in text)
    if len(text) == 6:
      try:
        return tuple(int(text[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
      except ValueError:
        pass
  elif isinstance(value, (list, tuple)) and len(value) == 3 and all(
      isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
    return tuple(int(round(c)) for c in value)  # type: ignore[return-value]
  raise HintError(f"unreadable color {value!r}: give '#rrggbb', '#rgb' or [r, g, b] with values 0-255")


def parse_hints(items: Any, where: str) -> list[Hint]:
  """A JSON list of {"x", "y", "color"[, "size"]} -> Hints; `where` names the file (and key) in errors."""
  if not isinstance(items, list):
    raise HintError(f"{where}: expected a list of hints, got {type(items).__name__}")
  out = []
  for i, item in enumerate(items):
    at = f"{where}: hint {i}"
    if not isinstance(item, Mapping) or not {"x", "y", "color"} <= set(item):
      raise HintError(f"{at}: each hint is an object with \"x\", \"y\" and \"color\" (optional \"size\"), got {item!r}")
    unknown = sorted(set(item) - {"x", "y", "color", "size"})
    if unknown:
      raise HintError(f"{at}: unknown fields {unknown}; a hint has x, y, color and size")
    numbers = {k: item[k] for k in ("x", "y", "size") if k in item}
    for k, v in numbers.items():
      if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v):
        raise HintError(f"{at}: {k} must be a number, got {v!r}")
    if "size" in item and item["size"] <= 0:
      raise HintError(f"{at}: size must be > 0 pixels, got {item['size']}")
    try:
      rgb = parse_color(item["color"])
    except HintError as e:
      raise HintError(f"{at}: {e}") from None
    out.append(Hint(float(item["x"]), float(item["y"]), rgb, float(item["size"]) if "size" in item else None))
  return out


def load(path: str) -> list[Hint] | dict[str, list[Hint]]:
  """A hints file -> one photo's hints (a list) or {file name or stem: hints}."""
  try:
    data = json.loads(storage.read_bytes(path))
  except FileNotFoundError:
    raise HintError(f"{path}: no such hints file") from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise HintError(f"{path}: not valid JSON ({e})") from None
  if isinstance(data, Mapping):
    return {str(k): parse_hints(v, f"{path} [{k!r}]") for k, v in data.items()}
  return parse_hints(data, path)


def for_photos(spec: list[Hint] | dict[str, list[Hint]], photos: Sequence[Any], path: str) -> list[list[Hint]]:
  """Each photo's hints (photos: epath-like with .name and .stem). A list needs exactly one photo; keys that
  name no photo are an error (a typo would silently colorize without the hints)."""
  if isinstance(spec, list):
    if len(photos) != 1:
      raise HintError(f"{path} is one list of hints, but {len(photos)} photos are given: key the hints by file "
                      f"name, e.g. {{\"{photos[0].name if photos else 'photo.jpg'}\": [...]}}")
    return [spec]
  unused = sorted(set(spec) - {p.name for p in photos} - {p.stem for p in photos})
  if unused:
    raise HintError(f"{path}: keys {unused} name none of the photos ({', '.join(p.name for p in photos[:5])}"
                    f"{', ...' if len(photos) > 5 else ''})")
  return [spec.get(p.name, spec.get(p.stem, [])) for p in photos]


def from_truth(photo: np.ndarray, count: int, seed: int = 0, size: float | None = None) -> list[Hint]:
  """`count` hints read off a color photo (H, W, 3) uint8, as a person who knows its colors would give them:
  places around the center as in training (a Gaussian of std a quarter of each side), each the photo's mean
  color over a square of `size` px (default: 1% of the longer side, at least 3). For demos, sample sheets and
  the release check of hint-taking models."""
  h, w = photo.shape[:2]
  side = size or max(3.0, 0.01 * max(h, w))
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    y = float(np.clip(np.floor(rng.normal(h / 2, h / 4)), 0, h - 1))
    x = float(np.clip(np.floor(rng.normal(w / 2, w / 4)), 0, w - 1))
    r = int(side) // 2
    patch = photo[max(0, int(y) - r):int(y) + r + 1, max(0, int(x) - r):int(x) + r + 1].reshape(-1, 3)
    out.append(Hint(x, y, tuple(int(round(c)) for c in patch.mean(0)), side))
  return out


def channels(hints: Sequence[Hint], photo_hw: tuple[int, int], size: int, where: str = "") -> np.ndarray:
  """Hints on a photo of photo_hw = (H, W) -> hint channels (size, size, 3) at the model's square input, as the
  photo is resized to it: each hint's square scales with the photo (at least 1 pixel). Raises HintError for a
  point outside the photo."""
  import jax.numpy as jnp
  from jaxcolor import hints as hints_lib
  from jaxcolor.colorspace import color
  h, w = photo_hw
  if not hints:
    return np.zeros((size, size, hints_lib.CHANNELS), np.float32)
  rows = []
  for i, hint in enumerate(hints):
    if not (0 <= hint.x < w and 0 <= hint.y < h):
      raise HintError(f"{where}hint {i} at (x={hint.x:g}, y={hint.y:g}) is outside the {w}x{h} photo "
                      f"(x in [0, {w}), y in [0, {h}))")
    sy, sx = size / h, size / w
    ph = DEFAULT_MODEL_PIXELS if hint.size is None else max(1, int(round(hint.size * sy)))
    pw = DEFAULT_MODEL_PIXELS if hint.size is None else max(1, int(round(hint.size * sx)))
    top = int(np.clip(np.floor((hint.y + 0.5) * sy - ph / 2 + 0.5), 0, size - ph))
    left = int(np.clip(np.floor((hint.x + 0.5) * sx - pw / 2 + 0.5), 0, size - pw))
    rows.append((top, left, ph, pw))
  # Converted padded to a multiple of 64 colors: one shape (one compile of the eager ops) for any count up to it.
  rgbs = np.zeros((-(-len(hints) // 64) * 64, 3), np.float32)
  rgbs[:len(hints)] = [hint.rgb for hint in hints]
  ab = np.asarray(color.rgb_to_lab(jnp.asarray(rgbs) / 255.0))[:len(hints), 1:]  # (K, 2)
  out = np.zeros((size, size, hints_lib.CHANNELS), np.float32)
  for (top, left, ph, pw), value in zip(rows, ab):  # later hints paint over earlier ones, as `hints.paint`
    out[top:top + ph, left:left + pw] = [*(value / color.AB_SCALE), 1.0]
  return out
