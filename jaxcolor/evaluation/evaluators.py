"""Evaluators (big_vision style): accumulate per-example metrics over eval batches, yield (name, value).

An evaluator never calls the model itself: `run` receives `predict_fn(images_uint8) -> ab`, a jitted
callable the trainer builds (`steps.predict_ab`: the model's outputs already decoded by its task), ab (B, h, w, 2)
in Lab units at the image resolution or below it. So evaluators do not depend on training code.

Batches are {"image": uint8 (B, H, W, 3), "mask": bool (B,)} as `input_pipeline` yields them; mask False
marks padding (and photos excluded from evaluation), which then count nowhere. Per-example values are
summed per batch inside jit (masked ones are 0), the sums accumulated on the host in float64, and the means
are sums / number of real examples: the same numbers whatever the batching or the number of hosts (a
fully replicated scalar per batch, readable on every host).

Configs list their evaluations in `config.evals.<name>` (`EvalSpec`: evaluator type, dataset, split, size,
cadence, batches, decoding), e.g. the run's validation split every 500 steps and Kodak24 at 256 px at the end;
metrics land under eval/<name>/<metric>. `get_evaluator("color_metrics", psnr_cap_db=60.0)` builds one; add new
evaluator types to EVALUATORS.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

import ml_collections

from jaxcolor.colorspace import color, quantize
from jaxcolor import task as task_lib
from jaxcolor.evaluation import metrics

Array = jnp.ndarray
PredictFn = Callable[[Array], Array]  # uint8 RGB (B, H, W, 3) -> ab (B, h, w, 2) in Lab units
Batch = Mapping[str, Any]


class Evaluator(Protocol):
  """What the trainer needs: reset, feed batches, read the means."""

  def reset(self) -> None:
    """Forgets all accumulated batches."""

  def update(self, predict_fn: PredictFn, batch: Batch) -> None:
    """Adds one batch {"image": uint8 (B, H, W, 3), "mask": bool (B,)} to the sums."""

  def result(self) -> Iterator[tuple[str, float]]:
    """(name, mean over all real examples so far) pairs."""

  def run(self, predict_fn: PredictFn, batches: Iterable[Batch]) -> Iterator[tuple[str, float]]:
    """reset, update with every batch, then yield result()."""


@dataclasses.dataclass
class MeanAccumulator:
  """float64 running sums of per-example metric values plus the real-example count."""
  sums: dict[str, float] = dataclasses.field(default_factory=dict)
  count: float = 0.0

  def add(self, batch_sums: Mapping[str, Any], batch_count: Any) -> None:
    for name, value in batch_sums.items():
      self.sums[name] = self.sums.get(name, 0.0) + float(np.asarray(value, np.float64))
    self.count += float(np.asarray(batch_count, np.float64))

  def means(self) -> dict[str, float]:
    """name -> sum / count (NaN before any real example)."""
    return {k: (v / self.count if self.count > 0 else float("nan")) for k, v in self.sums.items()}


class PerExampleEvaluator:
  """Base class: subclasses define `per_example(images, output, mask) -> {name: (B,)}`, traced under jit."""

  def __init__(self, image_key: str = "image", mask_key: str = "mask"):
    self.image_key, self.mask_key = image_key, mask_key
    self.accumulator = MeanAccumulator()
    self._batch_sums = jax.jit(self._sums)

  def per_example(self, images: Array, output: Array, mask: Array) -> dict[str, Array]:
    raise NotImplementedError

  def check_output(self, output: Array) -> None:
    """Host-side hook run on each model output before the jitted metrics (e.g. to validate shapes)."""

  def _sums(self, images: Array, output: Array, mask: Array | None) -> tuple[dict[str, Array], Array]:
    if mask is None:  # built under jit, so it is sharded like the batch
      mask = jnp.ones(images.shape[:1], bool)
    mask = mask.astype(bool)
    values = self.per_example(images, output, mask)
    return {k: jnp.sum(v) for k, v in values.items()}, jnp.sum(mask.astype(jnp.float32))

  def reset(self) -> None:
    self.accumulator = MeanAccumulator()

  def update(self, predict_fn: PredictFn, batch: Batch) -> None:
    images = batch[self.image_key]  # (B, H, W, 3) uint8
    mask = batch.get(self.mask_key)  # (B,) bool, or None: all real
    output = predict_fn(images)  # (B, h, w, C)
    self.check_output(output)
    sums, count = self._batch_sums(images, output, mask)
    self.accumulator.add(sums, count)

  def result(self) -> Iterator[tuple[str, float]]:
    yield from sorted(self.accumulator.means().items())
    yield "num_examples", self.accumulator.count

  def run(self, predict_fn: PredictFn, batches: Iterable[Batch]) -> Iterator[tuple[str, float]]:
    self.reset()
    for batch in batches:
      self.update(predict_fn, batch)
    yield from self.result()


# Baselines scored beside every model: a constant ab everywhere. "gray" leaves the photo gray; "tint" is one
# warm sepia-like tint, which scores near gray on PSNR and AuC and well on unbalanced hue accuracy (most colored
# pixels in photos are warm), so a model must beat it to show it knows what it colors.
BASELINES: dict[str, tuple[float, float]] = {"gray": (0.0, 0.0), "tint": (6.0, 16.0)}
_HUE = "_hue"  # per-sector counts behind the hue accuracies (summed, then turned into ratios in `result`)


class ColorMetrics(PerExampleEvaluator):
  """All metrics of `jaxcolor.evaluation.metrics` for the model and, side by side, the constant baselines
  (`BASELINES`: gray, ab = 0, and a constant warm tint, ab = (6, 16)).

  The prediction is rebuilt as the photo's own L with the predicted ab, converted to RGB and (by default)
  rounded to 8 bits like a saved PNG; PSNR, SSIM and colorfulness use that RGB, AuC and the ab errors the
  predicted ab itself. Names: psnr, ssim, auc, colorfulness, colorfulness_gt, delta_colorfulness (mean of
  per-example |CF(gt) - CF(pred)|), delta_colorfulness_of_means (|mean CF(gt) - mean CF(pred)|, the
  dataset-level figure papers tabulate), ab_mae, ab_mse (Lab units), ab_mae_128, ab_mse_128 (ab / 128, the
  Keras seeds' units), hue_accuracy_balanced and hue_accuracy (`metrics.hue_sector_counts`, pooled over the
  dataset); each baseline's under "gray/" and "tint/"; num_examples.

  Args:
    round_to_uint8: quantize predicted RGB to 8 bits before the RGB metrics.
    psnr_cap_db: per-example PSNR is capped here (identical images give +inf, which would swamp a mean).
    grayscale_baseline: also report the baselines (gray and tint).
  """

  def __init__(self, *, round_to_uint8: bool = True, psnr_cap_db: float = 100.0, grayscale_baseline: bool = True,
               image_key: str = "image", mask_key: str = "mask"):
    self.round_to_uint8, self.psnr_cap_db = round_to_uint8, psnr_cap_db
    self.grayscale_baseline = grayscale_baseline
    super().__init__(image_key=image_key, mask_key=mask_key)

  def check_output(self, output: Array) -> None:
    if output.ndim != 4 or output.shape[-1] != 2:
      raise ValueError(f"color_metrics takes predicted ab (B, h, w, 2) in Lab units, got shape {output.shape} "
                       "(decode a model's outputs with its task: ColorTask.decode / steps.predict_ab)")

  def _one(self, l: Array, ab: Array, gt_rgb: Array, gt_ab: Array, mask: Array) -> dict[str, Array]:
    rgb = color.l_ab_to_rgb(l, ab)  # (B, H, W, 3) in [0, 1]
    if self.round_to_uint8:
      rgb = jnp.round(rgb * 255.0) / 255.0
    hits, pixels = metrics.hue_sector_counts(ab, gt_ab, mask)
    hue = {f"{_HUE}_hits_{i}": hits[:, i] for i in range(metrics.HUE_SECTORS)}
    hue.update({f"{_HUE}_pixels_{i}": pixels[:, i] for i in range(metrics.HUE_SECTORS)})
    return {**hue,
        "psnr": jnp.minimum(metrics.psnr(rgb, gt_rgb, mask), self.psnr_cap_db),
        "ssim": metrics.ssim(rgb, gt_rgb, mask),
        "auc": metrics.auc(ab, gt_ab, mask),
        "colorfulness": metrics.colorfulness(rgb, mask),
        "delta_colorfulness": metrics.delta_colorfulness(rgb, gt_rgb, mask),
        "ab_mae": metrics.ab_mae(ab, gt_ab, mask),
        "ab_mse": metrics.ab_mse(ab, gt_ab, mask),
        "ab_mae_128": metrics.ab_mae(ab, gt_ab, mask, scale=metrics.SEEDS_AB_SCALE),
        "ab_mse_128": metrics.ab_mse(ab, gt_ab, mask, scale=metrics.SEEDS_AB_SCALE),
    }

  def per_example(self, images: Array, output: Array, mask: Array) -> dict[str, Array]:
    gt_rgb = color.to_float_rgb(images)  # (B, H, W, 3)
    l, gt_ab = color.rgb_to_l_ab(images)  # (B, H, W, 1), (B, H, W, 2)
    ab = task_lib.upsample(jnp.asarray(output, jnp.float32), *images.shape[1:3])  # (B, H, W, 2)
    if not self.grayscale_baseline:
      values = self._one(l, ab, gt_rgb, gt_ab, mask)
    else:  # model and baselines as one batch: one program to compile
      n = 1 + len(BASELINES)
      rep = lambda x: jnp.concatenate([x] * n)
      constants = [jnp.broadcast_to(jnp.asarray(v, jnp.float32), ab.shape) for v in BASELINES.values()]
      every = self._one(rep(l), jnp.concatenate([ab, *constants]), rep(gt_rgb), rep(gt_ab), rep(mask))
      b = images.shape[0]
      values = {k: v[:b] for k, v in every.items()}
      for i, name in enumerate(BASELINES, start=1):
        values.update({f"{name}/{k}": v[i * b:(i + 1) * b] for k, v in every.items()})
    values["colorfulness_gt"] = metrics.colorfulness(gt_rgb, mask)
    return values

  def result(self) -> Iterator[tuple[str, float]]:
    means = self.accumulator.means()
    for prefix in ("", *(f"{b}/" for b in BASELINES)) if self.grayscale_baseline else ("",):
      if f"{prefix}colorfulness" in means:
        means[f"{prefix}delta_colorfulness_of_means"] = abs(
            means["colorfulness_gt"] - means[f"{prefix}colorfulness"])
      counts = [[means.pop(f"{prefix}{_HUE}_{kind}_{i}", 0.0) for i in range(metrics.HUE_SECTORS)]
                for kind in ("hits", "pixels")]  # mean counts per example: their ratios are those of the sums
      means[f"{prefix}hue_accuracy_balanced"] = metrics.balanced_hue_accuracy(*counts)
      means[f"{prefix}hue_accuracy"] = metrics.hue_accuracy(*counts)
    yield from sorted(means.items())
    yield "num_examples", self.accumulator.count


EVALUATORS: dict[str, type[PerExampleEvaluator]] = {
    "color_metrics": ColorMetrics,
}


def get_evaluator(name: str, **kwargs: Any) -> Evaluator:
  """Builds the evaluator registered as `name` with its options."""
  if name not in EVALUATORS:
    raise ValueError(f"unknown evaluator {name!r}; choose one of: {', '.join(sorted(EVALUATORS))}")
  try:
    return EVALUATORS[name](**kwargs)
  except TypeError as e:
    raise ValueError(f"evaluator {name!r} does not take options {sorted(kwargs)}: {e}") from e


# -- evaluations named in a config -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class EvalSpec:
  """One evaluation of a training run. None / "" fields take the run's own setting (in brackets)."""
  name: str
  type: str = "color_metrics"  # a key of EVALUATORS
  dataset: str = ""  # a dataset name (jaxcolor.data.datasets) [config.dataset]
  split: str | None = None  # [the dataset's eval split; config.eval_split for the run's own dataset]
  size: int | None = None  # photo size the metrics are computed at [config.eval_image_size or image_size]
  every: int | None = None  # steps between evaluations, 0: only at the end [config.eval_every]
  batches: int | None = None  # eval batches per evaluation, 0: the whole split [config.eval_batches]
  decoding: str | None = None  # classification: how logits become ab [config.decoding]
  temperature: float | None = None  # annealed-mean temperature [config.temperature]

  def due(self, config: Any, step: int, last: bool) -> bool:
    """Whether it runs after `step`: at its cadence, and always after the last step."""
    every = int(config.eval_every if self.every is None else self.every)
    return last or bool(every and step % every == 0)

  def data_config(self, config: Any) -> ml_collections.ConfigDict:
    """The run's config with this evaluation's photos: what `input_pipeline.eval_dataset` reads."""
    c = ml_collections.ConfigDict(config.to_dict())
    if self.dataset and self.dataset != config.dataset:
      c.dataset, c.eval_split, c.train_split, c.mix_datasets = self.dataset, None, None, ()
    if self.split:
      c.eval_split = self.split
    if self.size:
      c.eval_image_size = int(self.size)
    return c


_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(EvalSpec) if f.name != "name")


def eval_fields(**values: Any) -> ml_collections.ConfigDict:
  """`config.evals.<name>` with every field present (None: the run's setting), so the command line can set
  any of them (`--config.evals.kodak24.every=1000`)."""
  unknown = sorted(set(values) - set(_SPEC_FIELDS))
  if unknown:
    raise ValueError(f"unknown evaluation fields {unknown}; fields: {', '.join(_SPEC_FIELDS)}")
  c = ml_collections.ConfigDict()
  for f in dataclasses.fields(EvalSpec):
    if f.name == "name":
      continue
    if f.name in values and values[f.name] is not None:
      c[f.name] = values[f.name]
    elif f.default is None:
      kind = {"split": str, "decoding": str, "temperature": float}.get(f.name, int)
      c[f.name] = ml_collections.config_dict.placeholder(kind)
    else:
      c[f.name] = f.default
  return c


def eval_specs(config: Any) -> dict[str, EvalSpec]:
  """`config.evals` -> {name: EvalSpec}, checked (unknown types, fields, datasets or decodings fail here).

  Also reads the older form, a tuple of evaluator names, each on the run's eval split."""
  from jaxcolor.data import datasets
  evals = config.get("evals") or {}
  items = ({str(n): {"type": str(n)} for n in evals} if isinstance(evals, (tuple, list)) else
           {str(k): dict(v.to_dict() if hasattr(v, "to_dict") else v) for k, v in evals.items()})
  out = {}
  for name, fields in items.items():
    unknown = sorted(set(fields) - set(_SPEC_FIELDS))
    if unknown:
      raise ValueError(f"config.evals.{name}: unknown fields {unknown}; fields: {', '.join(_SPEC_FIELDS)}")
    spec = EvalSpec(name, **fields)
    if spec.type not in EVALUATORS:
      raise ValueError(f"config.evals.{name}.type={spec.type!r}; choose one of: {', '.join(sorted(EVALUATORS))}")
    if spec.dataset:
      datasets.get_spec(spec.dataset)  # unknown names list the choices
    for field in ("size", "every", "batches"):
      value = getattr(spec, field)
      if value is not None and int(value) < 0:
        raise ValueError(f"config.evals.{name}.{field}={value} must be >= 0")
    if spec.decoding is not None and spec.decoding not in quantize.DECODINGS:
      raise ValueError(f"config.evals.{name}.decoding={spec.decoding!r}; choose one of: "
                       f"{', '.join(quantize.DECODINGS)}")
    out[name] = spec
  return out
