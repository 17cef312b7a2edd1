"""Throughput (images/s) of the host train pipeline on this machine.

Settings: Tiny-ImageNet 64x64 (64x64 crops) and photos-256 (224x224 crops), default
augmentation (random resized crop + flip), optionally also with rotation and zoom. The folder
datasets are built into --data_dir on first use (not timed). Host only: uint8 numpy batches as
the trainer receives them before the device transfer.

  python benchmarks/input_pipeline.py [--shared_data $JAXCOLOR_DATA] [--data_dir DIR] [--seconds 20]
  python benchmarks/input_pipeline.py --gcs     # also read the same builds from a bucket on a local GCS emulator

--gcs copies each build into a bucket of the emulator the tests use (tests/gcs_emulator.py: fake-gcs-server,
tf.io.gfile through a local TLS proxy, ~50 ms a request) and times reading it from gs://. A figure, not a
target: the emulator is not GCS.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections

from jaxcolor import defaults
from jaxcolor.data import input_pipeline

REPO = pathlib.Path(__file__).resolve().parents[1]


def measure(config: ml_collections.ConfigDict, seconds: float, warmup_batches: int = 5) -> float:
  """Images per second of `train_dataset(config)` iterated as numpy, after a warmup."""
  it = input_pipeline.train_dataset(config).as_numpy_iterator()
  for _ in range(warmup_batches):
    next(it)
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds:
    n += next(it)["image"].shape[0]
  return n / (time.perf_counter() - t0)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--shared_data", default=os.environ.get("JAXCOLOR_DATA", str(REPO.parent / "shared" / "data")),
                 help="data root holding tiny-imagenet-64/ and photos-256/ (default: $JAXCOLOR_DATA, else ../shared/data)")
  p.add_argument("--data_dir", default=os.path.expanduser("~/tensorflow_datasets"))
  p.add_argument("--seconds", type=float, default=20.0)
  p.add_argument("--with_rotation", action="store_true", help="also time rotation + zoom")
  p.add_argument("--gcs", action="store_true", help="also time reading the builds from a local GCS emulator")
  args = p.parse_args()
  shared = pathlib.Path(args.shared_data)
  bucket = _start_gcs_emulator() if args.gcs else None
  settings = [
      ("tiny-imagenet-64 @64x64", shared / "tiny-imagenet-64", "train", 64, 256),
      ("photos-256 @224x224", shared / "photos-256", "train", 224, 64),
  ]
  augments = [("rrc+flip", {})]
  if args.with_rotation:
    augments.append(("rrc+flip+rot10+zoom0.1", {"rotation_degrees": 10.0, "zoom": 0.1}))
  print(f"cpu cores: {os.cpu_count()}")
  for name, folder, split, size, batch in settings:
    for aug_name, aug in augments:
      config = defaults.get_config()
      config.update(dict(dataset=f"folder:{folder}", data_dir=args.data_dir, train_split=split,
                         image_size=size, batch_size=batch, seed=0))
      config.augment.update(aug)
      t = time.perf_counter()
      input_pipeline.get_builder(input_pipeline.parse_config(config))
      build_s = time.perf_counter() - t
      rate = measure(config, args.seconds)
      print(f"{name:26s} {aug_name:24s} batch {batch:4d}: {rate:8.0f} img/s "
            f"(dataset ready in {build_s:.1f}s)", flush=True)
      if bucket:
        report = input_pipeline.get_builder(input_pipeline.parse_config(config)).data_dir
        gs_dir = _copy_to_bucket(report, args.data_dir, bucket)
        name_config = "/".join(pathlib.Path(report).parts[-3:-1])
        config.dataset, config.data_dir = f"tfds:{name_config}", gs_dir
        print(f"{name:26s} {aug_name:24s} batch {batch:4d}: {measure(config, args.seconds):8.0f} img/s "
              f"from {gs_dir} (emulator)", flush=True)


def _start_gcs_emulator() -> str:
  """The tests' emulator (loopback-only network namespace when root), its settings in os.environ; a bucket."""
  import sys
  sys.path.insert(0, str(REPO / "tests"))
  import gcs_emulator
  print(f"network: {gcs_emulator.isolate_network()}")
  import tempfile
  emulator = gcs_emulator.GCSEmulator(pathlib.Path(tempfile.mkdtemp()))
  os.environ.update(emulator.env)
  return emulator.bucket("bench")


def _copy_to_bucket(build_dir: str, data_dir: str, bucket: str) -> str:
  """Copies one TFDS build (files under data_dir) to the same place under gs://bucket/tfds; returns that data_dir."""
  from jaxcolor import storage
  root = storage.path(data_dir)
  for folder, _, files in storage.path(build_dir).walk():
    for f in files:
      storage.write_atomic(f"{bucket}/tfds/{(folder / f).relative_to(root)}", (folder / f).read_bytes())
  return f"{bucket}/tfds"


if __name__ == "__main__":
  main()
