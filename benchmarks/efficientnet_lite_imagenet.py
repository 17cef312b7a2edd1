"""ImageNet top-1 / top-5 of the converted EfficientNet-Lite encoders on Tiny-ImageNet val: the oracle that a
wrong conversion cannot pass.

Tiny-ImageNet val holds 5,000 ImageNet photos (64 x 64) of 200 ImageNet classes; each folder is a wnid, and the
class index of a wnid is its position among the 1,000 sorted ImageNet-1k wnids (the list TFDS ships for
imagenet2012). Each photo is upsampled to the encoder's size (bilinear) and classified 1000-way, in color and
as the gray of its own L (what a colorizer's encoder sees), with the encoder's input scaling (x - 127) / 128,
and with the usual ImageNet mean / std scaling for comparison.

    python benchmarks/efficientnet_lite_imagenet.py [--variants lite0,lite1,lite2] [--size 224] [--limit 0]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxcolor.colorspace import color
from jaxcolor.cpu import kernels
from jaxcolor.models import efficientnet_lite, keras_weights, pretrained

REPO = pathlib.Path(__file__).resolve().parents[1]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def imagenet_wnids() -> list[str]:
  """The 1,000 ImageNet-1k wnids in class-index order (sorted), from the list TFDS ships."""
  import importlib.resources
  text = (importlib.resources.files("tensorflow_datasets") / "datasets/imagenet2012/labels.txt").read_text()
  wnids = text.split()
  assert len(wnids) == 1000 and wnids == sorted(wnids)
  return wnids


def load_val(root: pathlib.Path, limit: int) -> tuple[np.ndarray, np.ndarray]:
  """Tiny-ImageNet val photos (N, 64, 64, 3) uint8 and their ImageNet class indices (N,)."""
  index = {w: i for i, w in enumerate(imagenet_wnids())}
  files = sorted((root / "tiny-imagenet-64" / "val").glob("*/*.JPEG"))
  if limit:
    files = files[:: max(1, len(files) // limit)][:limit]
  images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
  return images, np.array([index[f.parent.name] for f in files])


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--shared_data", default=os.environ.get("JAXCOLOR_DATA", str(REPO.parent / "shared" / "data")))
  p.add_argument("--variants", default="lite0,lite1,lite2")
  p.add_argument("--size", type=int, default=224, help="side the photos are upsampled to")
  p.add_argument("--limit", type=int, default=0, help="photos (0: all 5,000)")
  p.add_argument("--batch", type=int, default=50)
  args = p.parse_args()
  images, labels = load_val(pathlib.Path(args.shared_data), args.limit)
  print(f"{len(images)} Tiny-ImageNet val photos of {len(set(labels))} classes, upsampled 64 -> {args.size} px")
  print("| encoder | input | scaling | top-1 % | top-5 % |\n|---|---|---|---|---|")
  for variant in args.variants.split(","):
    enc = efficientnet_lite.EfficientNetLite(variant, include_top=True,
                                             **kernels.for_model(efficientnet_lite.EfficientNetLite))
    shapes = jax.eval_shape(lambda: enc.init(jax.random.key(0), jnp.zeros((1, args.size, args.size, 3))))
    variables = pretrained.load_encoder(enc, pretrained.INSTALLED, shapes)

    def run(gray: bool, scaling: str) -> tuple[float, float]:
      top1 = top5 = 0
      for i in range(0, len(images), args.batch):
        batch = jnp.asarray(images[i:i + args.batch])
        if gray:
          batch = keras_weights.gray_rgb_from_l(color.rgb_to_l_ab(batch)[0])
        rgb = jnp.clip(jax.image.resize(batch.astype(jnp.float32), (batch.shape[0], args.size, args.size, 3),
                                        "bilinear"), 0, 255)
        x = efficientnet_lite.preprocess(rgb) if scaling == "lite" else (rgb - IMAGENET_MEAN) / IMAGENET_STD
        out = np.asarray(forward(variables, x))
        top = np.argsort(-out, axis=-1)[:, :5]
        y = labels[i:i + args.batch]
        top1 += int(np.sum(top[:, 0] == y))
        top5 += int(np.sum(np.any(top == y[:, None], axis=1)))
      return 100.0 * top1 / len(images), 100.0 * top5 / len(images)

    forward = jax.jit(lambda v, x: enc.apply(v, x)["logits"])
    for gray in (False, True):
      for scaling in ("lite", "imagenet"):
        t = time.time()
        top1, top5 = run(gray, scaling)
        name = "(x - 127) / 128" if scaling == "lite" else "ImageNet mean / std"
        print(f"| {variant} | {'gray of L' if gray else 'color'} | {name} | {top1:.1f} | {top5:.1f} |"
              f"  ({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
  main()
