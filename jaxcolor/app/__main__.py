"""A local web page for colorizing: open a photo, compare the models side by side, add hints, download.

    python -m jaxcolor.app                                   # the shipped models, http://127.0.0.1:8765/
    python -m jaxcolor.app --workdir=runs/mine --workdir=runs/other [--models=vivid,guided] [--port=8000]

The page shows the photo's L and every loaded model's colorization at screen size (previews at a long side of
512 px), a temperature slider for classification models, color hints for hint-taking models (click the photo
to place one with the color picker's color, drag to move, right-click to remove), and a full-resolution download
per model with the pixels `python -m jaxcolor.colorize` writes for the same photo and settings.
It listens on 127.0.0.1 (this machine only). --host=0.0.0.0 exposes it to the network: anyone who can reach
the port can upload photos and use this machine's CPU or accelerator; there is no login.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jaxcolor import colorize, run_dir


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxcolor.app", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default=",".join(run_dir.REFERENCE_MODELS),
                 help=f"shipped models to load (default: all: {', '.join(run_dir.REFERENCE_MODELS)}; '' for none)")
  p.add_argument("--workdir", action="append", default=[], help="a trained run to add (repeatable)")
  p.add_argument("--host", default="127.0.0.1", help="127.0.0.1: this machine only; 0.0.0.0: the network")
  p.add_argument("--port", type=int, default=8765)
  p.add_argument("--max_pixels", type=int, default=colorize.DEFAULT_MAX_PIXELS, help="refuse larger photos")
  p.add_argument("--preview_side", type=int, default=512, help="long side of the previews, px")
  args = p.parse_args(argv)
  names = [m for m in args.models.split(",") if m]
  unknown = [m for m in names if m not in run_dir.REFERENCE_MODELS]
  if unknown:
    p.error(f"unknown models {unknown}; choose from: {', '.join(run_dir.REFERENCE_MODELS)}")
  if not names and not args.workdir:
    p.error("nothing to serve: give --models or --workdir")
  logging.basicConfig(level=logging.WARNING)
  from jaxcolor.app import server, studio
  try:
    s = studio.Studio(names + args.workdir, max_pixels=args.max_pixels, preview_side=args.preview_side)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  server.serve(s, args.host, args.port)
  return 0


if __name__ == "__main__":
  sys.exit(main())
