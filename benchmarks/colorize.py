"""End-to-end colorization throughput: photos on disk -> colorized PNGs (decode, model, upsample, encode).

    python benchmarks/colorize.py [--photos ../shared/data/eval/kodak24] [--models eccv16,unet]

Each model runs at its default input size with random weights (speed does not depend on training), on the
500x500 Kodak24 photos, batch 1 and 8. The first pass compiles and is not timed; the figure is the second.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

import sys

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repo root, for configs/
from configs import default  # noqa: E402
from jaxcolor import builders, colorize, models  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--photos", default=str(pathlib.Path(__file__).resolve().parents[2] / "shared/data/eval/kodak24"))
  p.add_argument("--models", default="eccv16,unet")
  p.add_argument("--batch_sizes", default="1,8")
  args = p.parse_args()
  photos = sorted(str(f) for f in pathlib.Path(args.photos).glob("*.png"))
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; {len(photos)} photos from {args.photos}")
  print("| model | input size | batch | img/s | s total |")
  print("|---|---|---|---|---|")
  for name in args.models.split(","):
    c = default.get_config()
    c.model, c.head, c.loss = name, "classification", "cross_entropy"
    c.image_size = models.MODELS[name].default_size
    with tempfile.TemporaryDirectory() as tmp:
      run = pathlib.Path(tmp) / "run"
      builders.write_untrained_run(c, run)
      colorizer = colorize.Colorizer(str(run))
      for batch in map(int, args.batch_sizes.split(",")):
        for attempt in range(2):  # the first pass compiles
          out = pathlib.Path(tmp) / f"out{batch}_{attempt}"
          t = time.perf_counter()
          results = colorize.colorize_files(colorizer, photos, str(out), batch_size=batch, log=open(os.devnull, "w"))
          dt = time.perf_counter() - t
        assert all(r.status == "done" for r in results), [r for r in results if r.status != "done"]
        print(f"| {name} | {c.image_size} | {batch} | {len(photos) / dt:.2f} | {dt:.1f} |", flush=True)


if __name__ == "__main__":
  main()
