"""Studies that train and compare jaxcolor runs (see experiments/README.md).

They read the registered photo sets (tiny_imagenet_64, photos_256, kodak24, mcmaster) from the data root
$JAXCOLOR_DATA; unless it is set, from the shared photos beside this repository (../shared/data).
"""
import os
import pathlib

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("JAXCOLOR_DATA"):
  os.environ["JAXCOLOR_DATA"] = str(SHARED_DATA)
