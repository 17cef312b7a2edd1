"""A small explicit registry: dataset name -> where its photos come from and its default splits.

Why: configs name datasets by a string; this module turns that string into a `DatasetSpec`
without importing TensorFlow, so a bad name fails fast with the list of choices. Reading is done
by `jaxcolor.data.input_pipeline`.

Accepted names:
  * a registered name (see `available()`), e.g. "skimage_photos" (the embedded default: the
    real color photos shipped inside scikit-image, works offline), "imagenet2012",
    "imagenet_resized/64x64", "places365_small", ...;
  * a photo set under the data root `$JAXCOLOR_DATA` (see `DATA_ROOT_LAYOUT`): "tiny_imagenet_64",
    "photos_256", "scenes_256", and the evaluation sets "kodak24", "mcmaster";
  * "tfds:<name>[/<config>]" for any TFDS image dataset with an "image" feature;
  * "folder:<path>" for a local photo folder (built once into a TFDS dataset, see
    `jaxcolor.data.folder_dataset`).
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Literal

Kind = Literal["tfds", "folder", "skimage"]

# Photo sets that are not in TFDS live under one data root, named by this environment variable.
DATA_ENV = "JAXCOLOR_DATA"

# Real color photographs bundled in the scikit-image wheel (no pooch download needed), by split.
# chelsea/coffee are held out for evaluation; the rest are training photos.
SKIMAGE_PHOTOS = {
    "train": ("astronaut.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
              "motorcycle_right.png", "retina.jpg", "rocket.jpg"),
    "validation": ("chelsea.png", "coffee.png"),
}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to read one dataset: `kind` plus a TFDS name or folder path, and default splits."""
  name: str
  kind: Kind
  tfds_name: str | None = None  # kind == "tfds"
  path: str | None = None  # kind == "folder": root of the photo folder
  train_split: str | None = "train"  # None: chosen from the built folder's splits
  eval_split: str | None = "validation"
  image_key: str = "image"
  description: str = ""


def _tfds(name: str, train: str | None = "train", eval_: str | None = "validation",
          desc: str = "") -> DatasetSpec:
  return DatasetSpec(name, "tfds", tfds_name=name, train_split=train, eval_split=eval_,
                     description=desc)


# name -> (folder under $JAXCOLOR_DATA, train split, eval split, description)
_DATA_ROOT_SETS: dict[str, tuple[str, str, str, str]] = {
    "tiny_imagenet_64": ("tiny-imagenet-64", "train", "val",
                         "Tiny-ImageNet 64x64 (30k train, 5k val): train/<class>/*.JPEG, val/<class>/*.JPEG"),
    "photos_256": ("photos-256", "train[:95%]", "train[95%:]",
                   "4.7k diverse photos, short side <= 256: train/<group>/*.jpg (last 5% held out)"),
    "scenes_256": ("scenes-256", "train[:95%]", "train[95%:]",
                   "4.9k outdoor scenes, streets, flowers, animals, clothing, short side 96-256: "
                   "train/<source>/*.jpg (last 5% held out)"),
    "kodak24": ("eval/kodak24", "train", "train", "Kodak24, 24 photos 500x500 (evaluation only): *.png"),
    "mcmaster": ("eval/mcmaster", "train", "train", "McMaster, 18 photos 500x500 (evaluation only): *.png"),
}
DATA_ROOT_LAYOUT = "\n".join(f"  ${DATA_ENV}/{sub}/  {desc}" for sub, _, _, desc in _DATA_ROOT_SETS.values())


def data_root(dataset: str) -> pathlib.Path:
  """The folder `$JAXCOLOR_DATA` names; a clear error when it is unset or missing `dataset`'s folder."""
  value = os.environ.get(DATA_ENV, "")
  sub = _DATA_ROOT_SETS[dataset][0]
  layout = f"expected layout:\n{DATA_ROOT_LAYOUT}"
  if not value:
    raise ValueError(f"dataset {dataset!r} is read from ${DATA_ENV}/{sub}, but {DATA_ENV} is not set; "
                     f"export {DATA_ENV}=<folder with your copies of these photo sets>; {layout}")
  root = pathlib.Path(value).expanduser().absolute()
  if not (root / sub).is_dir():
    raise ValueError(f"dataset {dataset!r}: {root / sub} is not a folder ({DATA_ENV}={value}); {layout}")
  return root


def _data_root_spec(name: str) -> DatasetSpec:
  sub, train, eval_, desc = _DATA_ROOT_SETS[name]
  path = os.path.normpath(data_root(name) / sub)
  return DatasetSpec(name, "folder", path=path, train_split=train, eval_split=eval_,
                     description=f"{desc} (${DATA_ENV}/{sub})")


_REGISTRY: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("skimage_photos", "skimage", description="9 real color photos bundled with "
                "scikit-image (7 train, 2 validation); works offline"),
    _tfds("imagenet2012", desc="ImageNet-1k (manual download)"),
    _tfds("imagenet_resized/64x64", desc="ImageNet downsampled to 64x64"),
    _tfds("places365_small", desc="Places365 at 256x256"),
    _tfds("coco/2017", desc="COCO 2017 images"),
    _tfds("oxford_flowers102", desc="Oxford 102 flowers"),
    _tfds("imagenette", desc="10-class ImageNet subset"),
    _tfds("tf_flowers", "train[:90%]", "train[90%:]", "5-class flowers (single split)"),
)}

PREFIXES = ("tfds:", "folder:")


def available() -> list[str]:
  """Registered names plus the accepted prefixes."""
  return sorted([*_REGISTRY, *_DATA_ROOT_SETS]) + [p + "<...>" for p in PREFIXES]


def get_spec(name: str) -> DatasetSpec:
  """Resolves a dataset name (registered, "tfds:<name>" or "folder:<path>") to its spec."""
  if not isinstance(name, str) or not name:
    raise ValueError(f"dataset must be a non-empty string; choices: {available()}")
  if name in _REGISTRY:
    return _REGISTRY[name]
  if name in _DATA_ROOT_SETS:
    return _data_root_spec(name)
  if name.startswith("tfds:") and len(name) > 5:
    tfds_name = name[5:]
    known = next((s for s in _REGISTRY.values() if s.tfds_name == tfds_name), None)
    # An unregistered name (a TFDS dataset, or a folder build read by name on a machine without the photos):
    # splits as for folders, "train" and its val/validation/test/eval split, or 95% / 5% of "train".
    return dataclasses.replace(known, name=name) if known else _tfds(tfds_name, train=None, eval_=None)
  if name.startswith("folder:") and len(name) > 7:
    path = os.path.abspath(os.path.expanduser(name[7:]))
    return DatasetSpec(name, "folder", path=path, train_split=None, eval_split=None,
                       description=f"photo folder {path}")
  raise ValueError(f"unknown dataset {name!r}; choices: {available()}")


def skimage_photo_files() -> dict[str, list[pathlib.Path]]:
  """The bundled scikit-image color photos present in this install, by split."""
  import skimage.data  # cheap, no TF

  root = pathlib.Path(os.path.dirname(skimage.data.__file__))
  out = {split: [root / f for f in names if (root / f).is_file()]
         for split, names in SKIMAGE_PHOTOS.items()}
  for split, files in out.items():
    if not files:
      raise FileNotFoundError(f"none of the scikit-image photos {SKIMAGE_PHOTOS[split]} for "
                              f"split '{split}' are in {root}")
  return out
