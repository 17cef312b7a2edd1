"""tf.data pipeline on small real subsets of ../shared/data and on tfds.testing.mock_data."""
import math

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxcolor import defaults
from jaxcolor.data import input_pipeline as ip
from jaxcolor.data import prefetch


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, shared_data):
  """Tiny-ImageNet subset with split folders: 40 train + 13 val photos (symlinks)."""
  root = tmp_path_factory.mktemp("tiny")
  src = shared_data / "tiny-imagenet-64"
  for split, n in (("train", 40), ("val", 13)):
    files = sorted((src / split).glob("*/*.JPEG"))[::97][:n]
    assert len(files) == n
    for f in files:
      dst = root / split / f.parent.name / f.name
      dst.parent.mkdir(parents=True, exist_ok=True)
      dst.symlink_to(f)
  return root


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory, shared_data):
  """photos-256 subset biased to the smallest and most elongated photos."""
  files = sorted((shared_data / "photos-256" / "train").glob("*/*.jpg"))
  sizes = {}
  for f in files:
    with Image.open(f) as im:  # header only
      sizes[f] = im.size
  by_aspect = sorted(files, key=lambda f: -max(sizes[f]) / min(sizes[f]))
  by_small = sorted(files, key=lambda f: min(sizes[f]))
  chosen = list(dict.fromkeys(by_aspect[:6] + by_small[:6] + files[::600]))
  root = tmp_path_factory.mktemp("odd")
  for f in chosen:
    (root / f"{f.parent.name}_{f.name}").symlink_to(f)
  return root, [sizes[f] for f in chosen]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


def _config(dataset: str, data_dir: str, **kw) -> ml_collections.ConfigDict:
  """jaxcolor.defaults with the test's fields; `augment` given as a dict updates the default augment (values put
  in as given: unchecked types, as code may build a config)."""
  base = defaults.get_config().to_dict()
  base.update(dataset=dataset, data_dir=data_dir, image_size=32, batch_size=8, seed=0, shuffle_buffer=64)
  base["augment"].update(kw.pop("augment", {}))
  base.update(kw)
  return ml_collections.ConfigDict(base)


def _take(ds, n):
  return list(ds.take(n).as_numpy_iterator())


def test_train_shapes_dtypes_and_determinism(tiny_folder, data_dir):
  cfg = _config(f"folder:{tiny_folder}", data_dir, augment=dict(rotation_degrees=8.0, zoom=0.2))
  a = _take(ip.train_dataset(cfg), 6)  # 48 > 40 examples: crosses an epoch boundary
  for batch in a:
    assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.uint8
    assert batch["mask"].shape == (8,) and batch["mask"].dtype == np.bool_ and batch["mask"].all()
  b = _take(ip.train_dataset(cfg), 6)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  cfg.seed = 1
  c = _take(ip.train_dataset(cfg), 1)
  assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_two_processes_read_disjoint_complete_parts(tiny_folder, data_dir):
  cfg = _config(f"folder:{tiny_folder}", data_dir, batch_size=8, eval_batch_size=4)
  pc = ip.parse_config(cfg)
  assert ip.resolve_splits(pc) == ("train", "val")
  for split in ip.resolve_splits(pc):
    parts = [[ex["file_name"] for ex in ip.read_split(
        pc, split, process_index=p, process_count=2, shuffle=True, seed=3).as_numpy_iterator()]
        for p in range(2)]
    assert not set(parts[0]) & set(parts[1])
    total = ip.get_builder(pc).info.splits[split].num_examples
    assert len(parts[0]) + len(parts[1]) == total and abs(len(parts[0]) - len(parts[1])) <= 1
  # Train: each process gets batch_size / 2; eval: same number of steps, masks count all photos.
  train = [_take(ip.train_dataset(cfg, process_index=p, process_count=2), 1)[0] for p in range(2)]
  assert [t["image"].shape[0] for t in train] == [4, 4]
  assert not np.array_equal(train[0]["image"], train[1]["image"])
  evals = [ip.eval_dataset(cfg, process_index=p, process_count=2) for p in range(2)]
  assert evals[0].num_steps == evals[1].num_steps == math.ceil(7 / 2)  # 13 val -> 7 + 6
  masks = []
  for e in evals:
    batches = list(e.dataset.as_numpy_iterator())
    assert len(batches) == e.num_steps
    masks.append(np.concatenate([b["mask"] for b in batches]))
    assert all(b["image"].shape == (2, 32, 32, 3) for b in batches)
  assert sum(int(m.sum()) for m in masks) == 13 and [e.num_examples for e in evals] == [7, 6]
  with pytest.raises(ValueError, match="divisible by the processes; got 0, 3, batch_size=8"):
    ip.train_dataset(cfg, process_index=0, process_count=3)


def test_eval_center_crop_padding_and_determinism(tiny_folder, data_dir):
  cfg = _config(f"folder:{tiny_folder}", data_dir, eval_image_size=48, eval_batch_size=8)
  e = ip.eval_dataset(cfg)
  assert (e.num_steps, e.num_examples) == (2, 13)
  batches = list(e.dataset.as_numpy_iterator())
  again = list(ip.eval_dataset(cfg).dataset.as_numpy_iterator())
  mask = np.concatenate([b["mask"] for b in batches])
  assert mask.tolist() == [True] * 13 + [False] * 3
  assert batches[1]["image"].shape == (8, 48, 48, 3)
  assert not batches[1]["image"][5:].any()  # padding is black
  for x, y in zip(batches, again):
    np.testing.assert_array_equal(x["image"], y["image"])


def test_progressive_sizes_follow_schedule(tiny_folder, data_dir):
  cfg = _config(f"folder:{tiny_folder}", data_dir, progressive_sizes=((0, 16), (2, 24), (4, 40)))
  shapes = [b["image"].shape[1] for b in _take(ip.train_dataset(cfg), 5)]
  assert shapes == [16, 16, 24, 24, 40]
  resumed = [b["image"].shape[1] for b in _take(ip.train_dataset(cfg, start_step=3), 2)]
  assert resumed == [24, 40]
  pc = ip.parse_config(cfg)
  assert [ip.image_size_for_step(pc, s) for s in (0, 1, 2, 3, 4, 100)] == [16, 16, 24, 24, 40, 40]


def test_odd_aspect_and_small_photos_at_224(odd_folder, data_dir):
  root, sizes = odd_folder
  assert max(max(s) / min(s) for s in sizes) > 2 and min(min(s) for s in sizes) < 100
  cfg = _config(f"folder:{root}", data_dir, image_size=224, batch_size=4,
                train_split="train[:75%]", eval_split="train[75%:]",
                augment=dict(random_resized_crop=False, rotation_degrees=10.0))
  for batch in _take(ip.train_dataset(cfg), 3):
    assert batch["image"].shape == (4, 224, 224, 3)
    assert batch["image"].reshape(4, -1).std(axis=1).min() > 5  # real content, not padding
  e = ip.eval_dataset(cfg)
  first = next(e.dataset.as_numpy_iterator())
  assert first["image"].shape == (4, 224, 224, 3) and first["mask"].all()


def test_mock_tfds_dataset_with_tiny_random_images(tmp_path):
  import tensorflow_datasets as tfds

  # Random mock pixels are colorful, so the on-the-fly gray filter (min_colorfulness=2) keeps all.
  cfg = _config("tfds:tf_flowers", str(tmp_path), batch_size=4, eval_batch_size=4)
  with tfds.testing.mock_data(num_examples=10):
    batches = _take(ip.train_dataset(cfg), 3)
    again = _take(ip.train_dataset(cfg), 3)
    e = ip.eval_dataset(cfg)
    ev = list(e.dataset.as_numpy_iterator())
  for x, y in zip(batches, again):
    assert x["image"].shape == (4, 32, 32, 3) and x["image"].dtype == np.uint8
    np.testing.assert_array_equal(x["image"], y["image"])
  assert e.num_steps == 3 and len(ev) == 3  # 10 mocked examples -> 4 + 4 + 2 (+2 padding)
  assert np.concatenate([b["mask"] for b in ev]).sum() == 10


def test_embedded_default_dataset_and_device_iterator(data_dir):
  cfg = _config("skimage_photos", data_dir, image_size=64, batch_size=16)
  mesh = prefetch.data_mesh()
  sharding = prefetch.batch_sharding(mesh)
  # as the training loop feeds the device: host batches prefetched onto the mesh, sharded over 'data'
  batch = next(prefetch.prefetch_to_device(ip.train_dataset(cfg).as_numpy_iterator(), sharding, 2))
  assert isinstance(batch["image"], jax.Array) and batch["image"].shape == (16, 64, 64, 3)
  assert batch["image"].sharding.is_equivalent_to(sharding, 4)
  data = ip.eval_dataset(cfg)
  evals = list(data.dataset.as_numpy_iterator())
  assert data.num_steps == len(evals) == 1 and int(np.asarray(evals[0]["mask"]).sum()) == 2


@pytest.mark.parametrize("field,value,match", [
    ("dataset", "imagenet", "choices: .*skimage_photos"),
    ("augment", {"flip": True, "colour_jitter": 1},
     r"unknown config.augment fields \['colour_jitter'\]; choices"),
    ("progressive_sizes", ((10, 32), (5, 64)), "strictly increasing"),
    ("image_size", 0, "config.image_size must be a positive int"),
    ("eval_split", "test", r"'test' is not a split of .*choices: \['train', 'val'\]"),
])
def test_bad_config_values_fail_clearly(tiny_folder, data_dir, field, value, match):
  cfg = _config(f"folder:{tiny_folder}", data_dir)
  cfg[field] = value
  with pytest.raises(ValueError, match=match):
    ip.eval_dataset(cfg)


def test_resume_continues_the_same_stream(tiny_folder, data_dir):
  """A run resumed at step 7 sees exactly the batches an uninterrupted run sees from step 7 on
  (40 train photos at batch 8 = 5 batches an epoch, so this crosses an epoch boundary)."""
  cfg = _config(f"folder:{tiny_folder}", data_dir)
  full = _take(ip.train_dataset(cfg), 10)
  resumed = _take(ip.train_dataset(cfg, start_step=7), 3)
  for x, y in zip(full[7:], resumed):
    np.testing.assert_array_equal(x["image"], y["image"])


def test_mixed_datasets_draw_from_both_deterministically_and_resume(tiny_folder, odd_folder, data_dir):
  """mix_datasets: examples come from both sources in the given proportion; same seed, same stream; a resumed
  run continues it exactly."""
  odd_root, _ = odd_folder
  import tensorflow as tf  # the pipeline's own decoder, so pixels compare exactly
  tiny_pixels = {tf.io.decode_image(f.read_bytes(), channels=3).numpy().tobytes()
                 for f in tiny_folder.glob("train/*/*.JPEG")}
  cfg = _config(f"folder:{tiny_folder}", data_dir, image_size=64, batch_size=8,
                augment=dict(random_resized_crop=True, crop_area=(1.0, 1.0), flip=False),
                mix_datasets=((f"folder:{odd_root}", 0.5),))
  full = _take(ip.train_dataset(cfg), 8)
  assert all(b["image"].shape == (8, 64, 64, 3) and b["image"].dtype == np.uint8 for b in full)
  # Tiny-ImageNet photos are 64x64: a whole-photo crop at 64 px returns them unchanged; the others are resized.
  from_tiny = [x.tobytes() in tiny_pixels for b in full for x in b["image"]]
  assert 16 <= sum(from_tiny) <= 48, f"{sum(from_tiny)} of 64 examples from the main dataset (expected ~32)"
  again = _take(ip.train_dataset(cfg), 8)
  resumed = _take(ip.train_dataset(cfg, start_step=5), 3)
  for x, y in zip(full, again):
    np.testing.assert_array_equal(x["image"], y["image"])
  for x, y in zip(full[5:], resumed):
    np.testing.assert_array_equal(x["image"], y["image"])


@pytest.mark.parametrize("mix", [(("tiny_imagenet_64", 1.0),), (("a", 0.6), ("b", 0.5)), (("tiny_imagenet_64",),)])
def test_bad_mix_fails_clearly(tiny_folder, data_dir, mix):
  cfg = _config(f"folder:{tiny_folder}", data_dir, mix_datasets=mix)
  with pytest.raises(ValueError, match="config.mix_datasets must be"):
    ip.parse_config(cfg)
