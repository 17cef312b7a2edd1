"""End-to-end colorization throughput: photos on disk -> colorized PNGs (decode, model, upsample, encode).

    python benchmarks/colorize.py [--photos $JAXCOLOR_DATA/eval/kodak24] [--models eccv16,unet]

Each model runs at its default input size with random weights (speed does not depend on training: the run folder
is written here with `jaxcolor.run_dir` and `jaxcolor.checkpoint`, as training lays it out), on the
500x500 Kodak24 photos ("same" sizes) and on crops of them to 24 distinct sizes between 300 and 500 px a side
("mixed", as in a folder of scans), batch 1 and 8. Both passes are timed: the first includes the compiles,
the second is the steady state.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import tempfile
import time

import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repo root, for configs/
from configs import default  # noqa: E402
from jaxcolor import builders, checkpoint, colorize, models, run_dir  # noqa: E402


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  data_root = os.environ.get("JAXCOLOR_DATA", str(pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
  p.add_argument("--photos", default=os.path.join(data_root, "eval", "kodak24"))
  p.add_argument("--models", default="eccv16,unet")
  p.add_argument("--batch_sizes", default="1,8")
  p.add_argument("--sizes", default="same,mixed")
  args = p.parse_args()
  photos = sorted(str(f) for f in pathlib.Path(args.photos).glob("*.png"))
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; {len(photos)} photos from {args.photos}")
  print("| model | input size | batch | photo sizes | first pass img/s (compiles) | second pass img/s |")
  print("|---|---|---|---|---|---|")
  with tempfile.TemporaryDirectory() as tmp:
    sets = {"same": photos, "mixed": _distinct_crops(photos, pathlib.Path(tmp) / "mixed")}
    for name in args.models.split(","):
      c = default.get_config()
      c.model, c.head, c.loss, c.rebalance = name, "classification", "cross_entropy", False  # no prior needed
      c.image_size = models.MODELS[name].default_size
      run = pathlib.Path(tmp) / name
      _untrained_run(c, run)
      for batch in map(int, args.batch_sizes.split(",")):
        for sizes in args.sizes.split(","):
          jax.clear_caches()  # each row compiles afresh: the first pass is what a new process pays
          colorizer = colorize.Colorizer(str(run))
          rates = []
          for attempt in range(2):
            out = pathlib.Path(tmp) / f"out_{name}_{batch}_{sizes}_{attempt}"
            t = time.perf_counter()
            results = colorize.colorize_files(colorizer, sets[sizes], str(out), batch_size=batch,
                                              log=open(os.devnull, "w"))
            rates.append(len(sets[sizes]) / (time.perf_counter() - t))
            assert all(r.status == "done" for r in results), [r for r in results if r.status != "done"]
          print(f"| {name} | {c.image_size} | {batch} | {sizes} | {rates[0]:.2f} | {rates[1]:.2f} |", flush=True)


def _untrained_run(config: ml_collections.ConfigDict, folder: pathlib.Path) -> None:
  """A run folder with random weights: config.json and bins.npz, one checkpoint of the variables."""
  bins = builders.build_bins(config)
  run_dir.write_artifacts(folder, config, bins)
  shape = (1, config.image_size, config.image_size, 1)
  variables = builders.build_model(config, bins.num_bins).init(jax.random.key(0), jnp.zeros(shape), train=False)
  with checkpoint.Checkpointer(folder, async_save=False) as ckpt:
    ckpt.maybe_save(1, {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}, force=True)


def _distinct_crops(photos: list[str], folder: pathlib.Path) -> list[str]:
  """Each photo cropped to its own size (300-500 px a side, no two alike), saved as PNG in `folder`."""
  folder.mkdir(parents=True)
  rng = np.random.default_rng(0)
  out, used = [], set()
  for path in photos:
    img = Image.open(path).convert("RGB")
    while (size := tuple(int(x) for x in rng.integers(300, min(img.size) + 1, 2))) in used:
      pass
    used.add(size)
    out.append(str(folder / pathlib.Path(path).name))
    img.crop((0, 0) + size).save(out[-1])
  return out


if __name__ == "__main__":
  main()
