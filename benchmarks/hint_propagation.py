"""What hint propagation costs: the shipped `guided` on Kodak24 with hints, the network alone vs propagated.

    python benchmarks/hint_propagation.py [--photos $JAXCOLOR_DATA/eval/kodak24] [--hints 1,10,50] [--sizes 192,256]

For each model input size and number of hints (read off each photo, `hint_file.from_truth`), times
`Colorizer.predict_ab` (resize, network, and with `propagate=True` the conjugate gradients of
`jaxcolor.hint_propagation`, at most Propagation.iters iterations) over the photos at batch 1 and 8, after a
pass that compiles; prints milliseconds per photo.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

import jax
import numpy as np
from PIL import Image

from jaxcolor.inference import hint_file
from jaxcolor.inference.colorizer import Colorizer


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  data_root = os.environ.get("JAXCOLOR_DATA", str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
  p.add_argument("--photos", default=os.path.join(data_root, "eval", "kodak24"))
  p.add_argument("--hints", default="1,10,50")
  p.add_argument("--sizes", default="192,256")
  p.add_argument("--batch_sizes", default="1,8")
  args = p.parse_args()
  photos = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(pathlib.Path(args.photos).glob("*.png"))]
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; {len(photos)} photos from {args.photos}")
  print("| input px | hints | batch | network ms/photo | propagated ms/photo |")
  print("|---|---|---|---|---|")
  for size in map(int, args.sizes.split(",")):
    network, spread = (Colorizer.reference("guided", size=size, propagate=flag) for flag in (False, True))
    for count in map(int, args.hints.split(",")):
      given = [hint_file.channels(hint_file.from_truth(x, count), x.shape[:2], size) for x in photos]
      for batch in map(int, args.batch_sizes.split(",")):
        ms = []
        for colorizer in (network, spread):
          colorizer.predict_ab(photos[:batch], batch_size=batch, hints=given[:batch])  # compiles
          t = time.perf_counter()
          colorizer.predict_ab(photos, batch_size=batch, hints=given)
          ms.append(1e3 * (time.perf_counter() - t) / len(photos))
        print(f"| {size} | {count} | {batch} | {ms[0]:.0f} | {ms[1]:.0f} |", flush=True)


if __name__ == "__main__":
  main()
