"""How fast the web page answers: open, first preview (compiles), then previews, slider moves, hints, downloads.

    python benchmarks/app_preview.py [--photo $JAXCOLOR_DATA/eval/kodak24/kodim05.png] [--models vivid,accurate,guided]
        [--upscale 4] [--repeats 5]

Times what the page's requests run (`jaxcolor.app.studio.Studio`, in process, no browser): opening the photo
(decode, preview resize), each model's first preview (includes its compile), then the median of --repeats
previews with a new temperature (classification models) or a new hint (hint-taking models) each time, and a
full-resolution download. --upscale enlarges the photo (LANCZOS) to test large scans: previews always run at a
long side of 512 px; the download at full size. Target: a preview back within 1 s after the first call.
"""
from __future__ import annotations

import argparse
import io
import os
import pathlib
import statistics
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from jaxcolor.app import studio  # noqa: E402
from jaxcolor.inference import hint_file  # noqa: E402


def timed(fn, *args, **kwargs) -> float:
  t = time.perf_counter()
  fn(*args, **kwargs)
  return time.perf_counter() - t


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  data = os.environ.get("JAXCOLOR_DATA", "../shared/data")
  p.add_argument("--photo", default=f"{data}/eval/kodak24/kodim05.png")
  p.add_argument("--models", default="vivid,accurate,guided")
  p.add_argument("--upscale", type=int, default=1)
  p.add_argument("--repeats", type=int, default=5)
  a = p.parse_args()
  img = Image.open(a.photo).convert("RGB")
  if a.upscale > 1:
    img = img.resize((img.width * a.upscale, img.height * a.upscale), Image.LANCZOS)
  buf = io.BytesIO()
  img.save(buf, format="PNG", compress_level=1)
  t = time.perf_counter()
  s = studio.Studio(a.models.split(","))
  print(f"load {len(s.models)} models: {time.perf_counter() - t:.1f} s")
  t = time.perf_counter()
  pid, photo = s.open(buf.getvalue(), pathlib.Path(a.photo).name)
  print(f"photo {img.width}x{img.height} ({img.width * img.height / 1e6:.1f} MP): open {time.perf_counter() - t:.2f} s; "
        f"preview {photo.preview.shape[1]}x{photo.preview.shape[0]}")
  print("| model | first preview (compile) s | preview s (median) | slider / hint preview s (median) | "
        "first download s | download s |")
  print("|---|---|---|---|---|---|")
  rng = np.random.default_rng(0)
  for name, m in s.models.items():
    first = timed(s.preview, pid, name)
    plain = statistics.median(timed(s.preview, pid, name) for _ in range(a.repeats))
    changes = []
    for i in range(a.repeats):
      if m.colorizer.takes_hints:
        hints = [hint_file.Hint(float(rng.integers(img.width)), float(rng.integers(img.height)),
                                tuple(int(c) for c in rng.integers(0, 256, 3))) for _ in range(i + 1)]
        changes.append(timed(s.preview, pid, name, hints=hints))
      elif m.colorizer.task.head == "classification":
        changes.append(timed(s.preview, pid, name, temperature=0.1 + 0.15 * i))
    changed = f"{statistics.median(changes):.3f}" if changes else "-"
    first_dl = timed(s.download, pid, name)
    dl = timed(s.download, pid, name)
    print(f"| `{name}` | {first:.2f} | {plain:.3f} | {changed} | {first_dl:.2f} | {dl:.2f} |", flush=True)


if __name__ == "__main__":
  main()
