"""tf.data input pipeline: datasets -> per-process uint8 RGB batches -> global sharded arrays.

The only jaxcolor module that imports TensorFlow (lazily, on first use); no other module may
import this one at import time. The host decodes, crops, resizes and augments uint8 RGB only;
Lab conversion and targets happen on device. A batch is {"image": uint8 (B, H, W, 3),
"mask": bool (B,)}; mask is False for eval padding (and gray TFDS eval photos, see below).

Config fields read (a run config: each field's one default is in `jaxcolor.defaults`; None where a field
derives from another; `parse_config` validates them):
  dataset            str: `jaxcolor.data.datasets.available()`, "tfds:<name>", "folder:<path>".
  data_dir           str: TFDS data_dir; folder datasets are built into it.
  train_split        str (None: the dataset's own; see resolve_splits): TFDS split, e.g. "train[:95%]".
  eval_split         str (None: the dataset's own): the same for evaluation.
  image_size         int: train (and default eval) crop size in pixels.
  eval_image_size    int (None: image_size); eval_batch_size int (None: batch_size): global eval batch.
  batch_size         int: GLOBAL train batch = per-process batch x process count.
  seed               int: everything random derives from it (same seed, same batches).
  augment.random_resized_crop  bool: Inception-style crop with area in crop_area and aspect ratio in
                     [3/4, 4/3]; False: random square crop of the short side.
  augment.crop_area  (float, float): area fraction range of random_resized_crop.
  augment.flip       bool: random horizontal flip.
  augment.rotation_degrees  float: uniform rotation in [-r, r] (r < 45); the image is zoomed just enough
                     that no empty corners appear (costs ~2x at 224 px).
  augment.zoom       float: extra zoom-in factor uniform in [1, 1 + zoom] (a crop: free).
  mix_datasets       ((name, weight), ...): other datasets mixed into the train stream, each
                     example drawn from one of them with probability weight (the main dataset
                     gets 1 - sum of weights); their train splits are their own defaults. Eval
                     reads the main dataset only.
  progressive_sizes  ((step, size), ...): train size from each step on, image_size before
                     the first (seed 002: ((0, 32), (s1, 64), (s2, 128), (s3, 256))).
  min_colorfulness   float: Hasler-Suesstrunk threshold; gray photos are dropped from folder
                     datasets at build time, from TFDS train data on the fly, masked in TFDS eval.
  min_side           int: folder photos with a smaller short side are skipped.
  shuffle_buffer     int: examples in the train shuffle buffer.
  cache              bool: cache encoded examples in memory (small datasets).
  prefetch           int: batches kept in flight to the devices.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re
from typing import Any, NamedTuple

import numpy as np

from jaxcolor import storage
from jaxcolor.data import datasets


class _LazyModule:  # imports the module on first attribute access: no TF at import time
  def __init__(self, name: str):
    self._name = name
  def __getattr__(self, attr: str) -> Any:
    return getattr(importlib.import_module(self._name), attr)


tf = _LazyModule("tensorflow")
tfds = _LazyModule("tensorflow_datasets")


@dataclasses.dataclass(frozen=True)
class Augment:
  """config.augment (see module docstring)."""
  random_resized_crop: bool
  crop_area: tuple[float, float]
  flip: bool
  rotation_degrees: float
  zoom: float


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """The validated, defaulted subset of the config that the pipeline reads."""
  spec: datasets.DatasetSpec
  data_dir: str
  train_split: str | None  # None: see resolve_splits
  eval_split: str | None
  image_size: int
  eval_image_size: int
  batch_size: int
  eval_batch_size: int
  seed: int
  augment: Augment
  progressive_sizes: tuple[tuple[int, int], ...]
  mix: tuple[tuple[datasets.DatasetSpec, float], ...]
  min_colorfulness: float
  min_side: int
  shuffle_buffer: int
  cache: bool
  prefetch: int


_DERIVED = object()


def _field(config: Any, key: str, if_none: Any = _DERIVED, kind: str = "any") -> Any:
  """config.<key>; `if_none` for a field whose None means "derived" (e.g. eval_image_size -> image_size);
  kind "pos" / "int" checks for a positive / any int."""
  if key not in config:
    raise ValueError(f"config.{key} is missing: a run config starts from jaxcolor.defaults.get_config()")
  value = config[key]
  if value is None:
    if if_none is _DERIVED:
      raise ValueError(f"config.{key} is required by the input pipeline")
    value = if_none
  if kind != "any" and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                        or (kind == "pos" and value <= 0)):
    raise ValueError(f"config.{key} must be a {'positive ' * (kind == 'pos')}int, got {value!r}")
  return int(value) if kind != "any" else value


def parse_config(config: Any) -> PipelineConfig:
  """Validates the pipeline's config fields (see module docstring); errors name field + choices."""
  spec = datasets.get_spec(_field(config, "dataset"))
  aug_cfg = dict(_field(config, "augment"))
  choices = sorted(f.name for f in dataclasses.fields(Augment))
  if set(aug_cfg) != set(choices):
    unknown, missing = sorted(set(aug_cfg) - set(choices)), sorted(set(choices) - set(aug_cfg))
    raise ValueError(f"unknown config.augment fields {unknown}; choices: {choices}" if unknown else
                     f"config.augment lacks {missing} (a run config starts from jaxcolor.defaults.get_config())")
  aug = Augment(**aug_cfg)
  lo, hi = (float(x) for x in aug.crop_area)
  if not (0 < lo <= hi <= 1 and 0 <= aug.rotation_degrees < 45 and aug.zoom >= 0):
    raise ValueError(f"config.augment needs 0 < crop_area[0] <= crop_area[1] <= 1, "
                     f"0 <= rotation_degrees < 45, zoom >= 0; got {aug}")
  aug = dataclasses.replace(aug, crop_area=(lo, hi), rotation_degrees=float(aug.rotation_degrees),
                            zoom=float(aug.zoom))
  schedule = tuple(tuple(p) for p in _field(config, "progressive_sizes"))
  steps = [p[0] for p in schedule]
  if (any(len(p) != 2 or int(p[1]) <= 0 for p in schedule) or steps != sorted(set(steps))
      or (steps and steps[0] < 0)):
    raise ValueError("config.progressive_sizes must be ((step, size), ...) with steps >= 0 "
                     f"strictly increasing and sizes > 0, got {schedule}")
  mix = tuple(tuple(p) for p in _field(config, "mix_datasets"))
  if any(len(p) != 2 or not 0 < float(p[1]) < 1 for p in mix) or sum(float(p[1]) for p in mix) >= 1:
    raise ValueError("config.mix_datasets must be ((dataset, weight), ...) with weights in (0, 1) summing to "
                     f"less than 1 (the main dataset gets the rest), got {mix}")
  mix_specs = tuple((datasets.get_spec(str(n)), float(w)) for n, w in mix)
  image_size, batch_size = (_field(config, k, kind="pos") for k in ("image_size", "batch_size"))
  data_dir = str(storage.path(_field(config, "data_dir")))  # local (absolute) or gs://
  return PipelineConfig(
      spec=spec, data_dir=data_dir,
      train_split=_field(config, "train_split", spec.train_split),
      eval_split=_field(config, "eval_split", spec.eval_split),
      image_size=image_size, eval_image_size=_field(config, "eval_image_size", image_size, "pos"),
      batch_size=batch_size, eval_batch_size=_field(config, "eval_batch_size", batch_size, "pos"),
      seed=_field(config, "seed", kind="int"), augment=aug,
      progressive_sizes=tuple((int(a), int(b)) for a, b in schedule), mix=mix_specs,
      min_colorfulness=float(_field(config, "min_colorfulness")),
      min_side=_field(config, "min_side", kind="pos"),
      shuffle_buffer=_field(config, "shuffle_buffer", kind="pos"),
      cache=bool(_field(config, "cache")), prefetch=_field(config, "prefetch", kind="pos"))


def image_size_for_step(pc: PipelineConfig, step: int) -> int:
  """Train image size at `step` under the progressive schedule."""
  return next((z for s, z in reversed(pc.progressive_sizes) if step >= s), pc.image_size)


def _local(process_index: int | None, process_count: int | None, global_batch: int,
           what: str) -> tuple[int, int, int]:
  """(process index, process count, per-process batch), defaults from jax."""
  import jax
  pi = jax.process_index() if process_index is None else process_index
  pn = jax.process_count() if process_count is None else process_count
  if not 0 <= pi < pn or global_batch % pn:
    raise ValueError(f"need 0 <= process_index < process_count and config.{what} divisible by "
                     f"the processes; got {pi}, {pn}, {what}={global_batch}")
  return pi, pn, global_batch // pn


@functools.lru_cache(maxsize=16)
def _builder(spec: datasets.DatasetSpec, data_dir: str, min_side: int, min_colorfulness: float):
  from jaxcolor.data import folder_dataset  # imports TFDS only when building
  if spec.kind == "tfds":
    return tfds.builder(spec.tfds_name, data_dir=data_dir)
  kw = dict(min_side=min_side, min_colorfulness=min_colorfulness)
  if spec.kind == "folder":
    return folder_dataset.build_folder_dataset(spec.path, data_dir, **kw)[0]
  return folder_dataset.build_from_files("skimage_photos", datasets.skimage_photo_files(),
                                         data_dir, **kw)[0]


def get_builder(pc: PipelineConfig):
  """The TFDS builder for the configured dataset (folder/embedded ones are built on first use)."""
  return _builder(pc.spec, pc.data_dir, pc.min_side, pc.min_colorfulness)


def resolve_splits(pc: PipelineConfig) -> tuple[str, str]:
  """(train, eval) split strings; for "folder:<path>" without configured splits: "train" and
  the folder's val/validation/test/eval split, or 95%/5% of "train" when it has only one."""
  train, evals = pc.train_split, pc.eval_split
  if train is None or evals is None:
    known = set(dict(get_builder(pc).info.splits))
    other = next((s for s in ("val", "validation", "test", "eval") if s in known), None)
    auto = ("train", other) if other else ("train[:95%]", "train[95%:]")
    train, evals = train or auto[0], evals or auto[1]
  return train, evals


def _check_split(builder, split: str) -> None:
  known = dict(builder.info.splits)
  if not known:  # e.g. under tfds.testing.mock_data: nothing to check against
    return
  for base in re.findall(r"([A-Za-z_][\w-]*)(?:\[[^\]]*\])?", split):
    if base not in known:
      raise ValueError(f"split {split!r}: {base!r} is not a split of {builder.name}; "
                       f"choices: {sorted(known)}")


def read_split(pc: PipelineConfig, split: str, *, process_index: int, process_count: int,
               shuffle: bool, seed: int = 0):
  """This process's disjoint part of `split` as undecoded examples (image: encoded bytes)."""
  builder = get_builder(pc)
  _check_split(builder, split)
  sub = tfds.split_for_jax_process(split, process_index=process_index, process_count=process_count)
  options = tf.data.Options()
  options.deterministic = True
  # Shards are read in parallel (up to 16 at once, deterministic order), so on a bucket the latency of each
  # request overlaps with the others' instead of adding up. 16 is TFDS's default: pinned, since the cycle
  # length decides the example order a resumed run must see again.
  read_config = tfds.ReadConfig(shuffle_seed=seed, options=options, interleave_cycle_length=16,
                                num_parallel_calls_for_interleave_files=tf.data.AUTOTUNE)
  return builder.as_dataset(split=sub, shuffle_files=shuffle, read_config=read_config,
                            decoders={pc.spec.image_key: tfds.decode.SkipDecoding()})


def _num_examples(pc: PipelineConfig, split: str, process_index: int, process_count: int) -> int:
  """Examples in one process's part of `split` (counted by reading when metadata lacks it)."""
  builder = get_builder(pc)
  sub = tfds.split_for_jax_process(split, process_index=process_index, process_count=process_count)
  try:
    return int(builder.info.splits[sub].num_examples)
  except (KeyError, ValueError, TypeError):
    ds = read_split(pc, split, process_index=process_index, process_count=process_count,
                    shuffle=False)
    return int(ds.reduce(np.int64(0), lambda n, _: n + 1).numpy())


def _decode(image):
  """Encoded bytes (JPEG/PNG/...) or an already decoded image -> uint8 (H, W, 3)."""
  if image.dtype == tf.string:
    return tf.io.decode_image(image, channels=3, expand_animations=False)
  image = tf.convert_to_tensor(image)
  return tf.image.grayscale_to_rgb(image) if image.shape[-1] == 1 else image


def _tf_colorfulness(image):
  """Hasler-Suesstrunk colorfulness of uint8 (H, W, 3), on a <=~64 px subsample for speed."""
  step = tf.maximum(tf.reduce_min(tf.shape(image)[:2]) // 64, 1)
  x = tf.cast(image[::step, ::step], tf.float32)
  rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]  # (h, w) each
  return (tf.sqrt(tf.math.reduce_std(rg) ** 2 + tf.math.reduce_std(yb) ** 2)
          + 0.3 * tf.sqrt(tf.reduce_mean(rg) ** 2 + tf.reduce_mean(yb) ** 2))


def _to_uint8(x):
  return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def _center_crop(image, nh, nw):
  """Centered (nh, nw) window of (H, W, 3)."""
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  return tf.image.crop_to_bounding_box(image, (h - nh) // 2, (w - nw) // 2, nh, nw)


def _random_crop(image, seed, aug: Augment):
  """Random crop window of (H, W, 3): Inception-style area/aspect crop or square crop."""
  shape = tf.shape(image)
  if aug.random_resized_crop:
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed, min_object_covered=0.0,
        aspect_ratio_range=(3 / 4, 4 / 3), area_range=aug.crop_area, max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    return tf.slice(image, begin, size)
  s = tf.minimum(shape[0], shape[1])
  return tf.image.stateless_random_crop(image, tf.stack([s, s, 3]), seed=seed)


def _rotate_resize(image, size, theta, zoom):
  """(H, W, 3) crop -> float (size, size, 3) rotated by theta, zoomed, in one resampling.
  Zoom >= |cos| + |sin| keeps the rotated square inside the crop (no empty corners)."""
  shape = tf.shape(image)
  r = tf.minimum(1.0, 2.0 * tf.cast(size / tf.reduce_max(shape[:2]), tf.float32))  # over 2x: shrink
  new_hw = tf.maximum(tf.cast(tf.round(tf.cast(shape[:2], tf.float32) * r), tf.int32), 1)
  x = tf.cond(r < 1.0,
              lambda: tf.image.resize(image, new_hw, method="bilinear", antialias=True),
              lambda: tf.cast(image, tf.float32))
  h, w, out = (tf.cast(v, tf.float32) for v in (tf.shape(x)[0], tf.shape(x)[1], size))
  c, s = tf.cos(theta), tf.sin(theta)
  scale = zoom * (tf.abs(c) + tf.abs(s))
  kx, ky = w / out / scale, h / out / scale  # input pixels per output pixel, per axis
  # Output pixel p samples input c_in + diag(kx, ky) R(theta) (p - c_out).
  co, cx, cy = (out - 1.0) / 2.0, (w - 1.0) / 2.0, (h - 1.0) / 2.0
  a0, a1, b0, b1 = kx * c, -kx * s, ky * s, ky * c
  transform = tf.stack([a0, a1, cx - (a0 + a1) * co,
                        b0, b1, cy - (b0 + b1) * co, 0.0, 0.0])[None]  # (1, 8)
  y = tf.raw_ops.ImageProjectiveTransformV3(
      images=x[None], transforms=transform, output_shape=tf.stack([size, size]),
      fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
  return y[0]


def _train_example(image, seed, size, aug: Augment):
  """Decoded or encoded image -> augmented uint8 (size, size, 3)."""
  seeds = tf.random.experimental.stateless_split(seed, 3)  # (3, 2)
  u = tf.random.stateless_uniform([2], seed=seeds[2])  # (rotation, zoom) draws in [0, 1)
  zoom = 1.0 + aug.zoom * u[1]
  x = _random_crop(_decode(image), seeds[0], aug)
  if aug.rotation_degrees > 0:
    theta = (2.0 * u[0] - 1.0) * aug.rotation_degrees * (math.pi / 180.0)
    x = _rotate_resize(x, size, theta, zoom)
  else:
    if aug.zoom > 0:  # zoom-in as a central crop: no extra resampling
      nhw = tf.maximum(tf.cast(tf.cast(tf.shape(x)[:2], tf.float32) / zoom, tf.int32), 1)
      x = _center_crop(x, nhw[0], nhw[1])
    x = tf.image.resize(x, tf.stack([size, size]), method="bilinear", antialias=True)
  if aug.flip:
    x = tf.image.stateless_random_flip_left_right(x, seeds[1])
  return _to_uint8(x)


def _eval_example(image, size: int, min_colorfulness: float):
  """Encoded image -> (uint8 (size, size, 3) center crop, keep-mask bool ())."""
  x = _decode(image)
  keep = _tf_colorfulness(x) >= min_colorfulness if min_colorfulness > 0 else tf.constant(True)
  side = tf.reduce_min(tf.shape(x)[:2])  # largest centered square: safe for any aspect ratio
  x = tf.image.resize(_center_crop(x, side, side), [size, size], method="bilinear", antialias=True)
  return _to_uint8(x), keep


def _seed_pair(*ints: int) -> np.ndarray:
  """Deterministic int64 (2,) stateless seed from a few ints."""
  return np.random.SeedSequence([abs(int(i)) for i in ints]).generate_state(2).astype(np.int64)


def _train_images(pc: PipelineConfig, pi: int, pn: int, seed: int):
  """Endless shuffled stream of one dataset's train images (encoded bytes, or decoded uint8 when filtered)."""
  ds = read_split(pc, resolve_splits(pc)[0], process_index=pi, process_count=pn, shuffle=True, seed=seed)
  ds = ds.map(lambda ex: ex[pc.spec.image_key])
  ds = (ds.cache() if pc.cache else ds).shuffle(pc.shuffle_buffer, seed=seed).repeat()
  if pc.spec.kind == "tfds" and pc.min_colorfulness > 0:  # folder datasets were filtered at build
    ds = ds.map(_decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(lambda x: _tf_colorfulness(x) >= pc.min_colorfulness)
  return ds


def train_dataset(config: Any, *, process_index: int | None = None,
                  process_count: int | None = None, start_step: int = 0):
  """Endless per-process train batches {"image": uint8 (b, S, S, 3), "mask": bool (b,)}.
  b = batch_size / process_count; S follows `progressive_sizes` from `start_step` on.
  The order depends only on (seed, process); a run resumed at `start_step` skips the examples
  the first `start_step` batches used and continues the same stream, augmentation included, so it
  sees exactly what an uninterrupted run would (skipping reads, but does not augment, those examples).
  """
  pc = parse_config(config)
  pi, pn, b = _local(process_index, process_count, pc.batch_size, "batch_size")
  seed_state = _seed_pair(pc.seed, pi)
  shuffle_seed = int(seed_state[0] % (2**31 - 1))
  sources = [(pc, 1.0 - sum(w for _, w in pc.mix))]
  sources += [(dataclasses.replace(pc, spec=spec, train_split=spec.train_split), w) for spec, w in pc.mix]
  streams = [_train_images(src, pi, pn, shuffle_seed + i) for i, (src, _) in enumerate(sources)]
  if len(streams) > 1:  # one element type for all: decoded uint8 (H, W, 3)
    streams = [st.map(_decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               if st.element_spec.dtype == tf.string else st for st in streams]
  ds = streams[0] if len(streams) == 1 else tf.data.Dataset.sample_from_datasets(
      streams, weights=[w for _, w in sources], seed=shuffle_seed)
  steps = tf.constant([s for s, _ in pc.progressive_sizes] or [0], tf.int64)
  sizes = tf.constant([z for _, z in pc.progressive_sizes] or [pc.image_size], tf.int32)
  base_seed = tf.constant(seed_state, tf.int64)
  static = None if pc.progressive_sizes else pc.image_size

  def augment(index, image):
    step = index // b
    i = tf.searchsorted(steps, step[None], side="right")[0] - 1
    size = tf.where(i < 0, pc.image_size, tf.gather(sizes, tf.maximum(i, 0)))
    seed = tf.random.experimental.stateless_fold_in(base_seed, index)
    x = _train_example(image, seed, size, pc.augment)
    return tf.ensure_shape(x, (static, static, 3))

  ds = ds.skip(start_step * b).enumerate(start=start_step * b)
  ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(b, drop_remainder=True).map(lambda x: {"image": x, "mask": tf.ones([b], tf.bool)})
  return ds.prefetch(tf.data.AUTOTUNE)


class EvalData(NamedTuple):
  dataset: Any  # tf.data.Dataset of {"image": uint8 (b, S, S, 3), "mask": bool (b,)}
  num_steps: int  # the same on every process
  num_examples: int  # real (unpadded) examples of this process


def eval_dataset(config: Any, *, process_index: int | None = None,
                 process_count: int | None = None) -> EvalData:
  """One pass over this process's part of the eval split, padded to `num_steps` full batches."""
  pc = parse_config(config)
  pi, pn, b = _local(process_index, process_count, pc.eval_batch_size, "eval_batch_size")
  eval_split = resolve_splits(pc)[1]
  counts = [_num_examples(pc, eval_split, p, pn) for p in range(pn)]
  num_steps = max(1, math.ceil(max(counts) / b))
  thr = pc.min_colorfulness if pc.spec.kind == "tfds" else 0.0
  size, key = pc.eval_image_size, pc.spec.image_key
  ds = read_split(pc, eval_split, process_index=pi, process_count=pn, shuffle=False)
  ds = ds.map(lambda ex: dict(zip(("image", "mask"), _eval_example(ex[key], size, thr))),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  pad = tf.data.Dataset.from_tensors({"image": tf.zeros([size, size, 3], tf.uint8),
                                      "mask": tf.constant(False)}).repeat()
  ds = ds.concatenate(pad).take(num_steps * b).batch(b, drop_remainder=True)
  return EvalData(ds.prefetch(tf.data.AUTOTUNE), num_steps, counts[pi])
