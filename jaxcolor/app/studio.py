"""What the web page asks of jaxcolor: photos held by id, previews and full-resolution downloads per model.

`Studio` loads every model once (compiled once per process; the temperature is an argument of the compiled
function, so the slider compiles nothing), keeps the last few opened photos, and answers one request at a
time (a lock: two browsers at once are queued, both answered). Previews run the photo at a long side of at
most `preview_side` px; downloads run the full photo exactly as `python -m jaxcolor.colorize` does (the same
`Colorizer.predict_ab` at the CLI's batch size and the same full-resolution merge), so the pixels are the CLI's.
"""
from __future__ import annotations

import collections
import dataclasses
import io
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from jaxcolor import colorize, run_dir
from jaxcolor.inference import hint_file, merge
from jaxcolor.inference.colorizer import Colorizer

CLI_BATCH_SIZE = 8  # colorize's default --batch_size: downloads compute exactly what the CLI computes
KEEP_PHOTOS = 8


@dataclasses.dataclass
class Photo:
  """An opened photo: full-resolution uint8 RGB (and alpha), its preview, and what was said about it."""
  name: str
  rgb: np.ndarray  # (H, W, 3)
  alpha: np.ndarray | None
  preview: np.ndarray  # (h, w, 3), long side <= preview_side
  note: str = ""


@dataclasses.dataclass
class Model:
  """A loaded model as the page lists it."""
  name: str
  colorizer: Colorizer
  label: str

  def describe(self) -> dict[str, Any]:
    c = self.colorizer
    return {"name": self.name, "label": self.label, "classification": c.task.head == "classification",
            "takes_hints": c.takes_hints, "temperature": c.temperature, "size": c.size}


def png_bytes(rgb: np.ndarray, alpha: np.ndarray | None = None, compress_level: int = 1) -> bytes:
  img = Image.fromarray(rgb)
  if alpha is not None:
    img = img.convert("RGBA")
    img.putalpha(Image.fromarray(alpha))
  buf = io.BytesIO()
  img.save(buf, format="PNG", compress_level=compress_level)
  return buf.getvalue()


class Studio:
  """Models (shipped names or run folders) and opened photos; every method is safe to call from many threads."""

  def __init__(self, sources: Sequence[str], *, max_pixels: int = colorize.DEFAULT_MAX_PIXELS,
               preview_side: int = 512):
    self.models: dict[str, Model] = {}
    for source in sources:
      if source in run_dir.REFERENCE_MODELS:
        model = Model(source, Colorizer.reference(source), run_dir.REFERENCE_MODELS[source])
      else:
        c = Colorizer(source)
        model = Model(source, c, f"run {source} (step {c.step}, {c.config.model}, {c.task.head})")
      self.models[model.name] = model
    self.max_pixels, self.preview_side = max_pixels, preview_side
    self._photos: collections.OrderedDict[str, Photo] = collections.OrderedDict()
    self._lock = threading.Lock()

  def open(self, data: bytes, name: str) -> tuple[str, Photo]:
    """Decodes an uploaded file as `colorize` does; raises ValueError / OSError with the reason."""
    if not data:
      raise ValueError("empty file")
    rgb, alpha = colorize.load_photo(io.BytesIO(data), self.max_pixels)
    h, w = rgb.shape[:2]
    scale = min(1.0, self.preview_side / max(h, w))
    note = ""
    if scale < 1:
      size = (max(1, round(w * scale)), max(1, round(h * scale)))
      preview = np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))
      note = f"{w}x{h} px: previews at {size[0]}x{size[1]}, downloads at full resolution"
    else:
      preview = rgb
    photo = Photo(name, rgb, alpha, preview, note)
    photo_id = uuid.uuid4().hex[:12]
    with self._lock:
      self._photos[photo_id] = photo
      while len(self._photos) > KEEP_PHOTOS:
        self._photos.popitem(last=False)
    return photo_id, photo

  def photo(self, photo_id: str) -> Photo:
    with self._lock:
      if photo_id not in self._photos:
        raise KeyError(f"no photo {photo_id!r} (the server keeps the last {KEEP_PHOTOS}; open it again)")
      return self._photos[photo_id]

  def model(self, name: str) -> Model:
    if name not in self.models:
      raise KeyError(f"no model {name!r}; loaded: {', '.join(self.models)}")
    return self.models[name]

  def _hint_channels(self, model: Model, photo: Photo, hints: list[hint_file.Hint]) -> list[np.ndarray | None]:
    if not hints:
      return [None]
    if not model.colorizer.takes_hints:
      raise ValueError(f"{model.name} does not take color hints")
    return [hint_file.channels(hints, photo.rgb.shape[:2], model.colorizer.size)]

  def preview(self, photo_id: str, model_name: str, temperature: float | None = None,
              hints: list[hint_file.Hint] = ()) -> bytes:
    """PNG of the preview-size photo colorized by `model_name` (hints in full-resolution pixels)."""
    photo, model = self.photo(photo_id), self.model(model_name)
    given = self._hint_channels(model, photo, list(hints))
    with self._lock:
      ab = model.colorizer.predict_ab([photo.preview], 1, hints=given, temperature=temperature)[0]
    return png_bytes(merge.merge(photo.preview, ab))

  def gray(self, photo_id: str) -> bytes:
    """PNG of the preview's L (the model's input), as gray."""
    preview = self.photo(photo_id).preview
    return png_bytes(np.repeat(np.asarray(Image.fromarray(preview).convert("L"))[..., None], 3, -1))

  def download(self, photo_id: str, model_name: str, temperature: float | None = None,
               hints: list[hint_file.Hint] = ()) -> bytes:
    """PNG at full resolution, the pixels `colorize --model=... [--temperature=T] [--hints=...]` writes."""
    photo, model = self.photo(photo_id), self.model(model_name)
    given = self._hint_channels(model, photo, list(hints))
    with self._lock:
      ab = model.colorizer.predict_ab([photo.rgb], CLI_BATCH_SIZE, hints=given, temperature=temperature)[0]
    return png_bytes(colorize.merge(photo.rgb, ab), photo.alpha, compress_level=6)
