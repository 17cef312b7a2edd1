"""Loss registry: every term training can minimize, each a function of one `LossInputs` plus its options.

    term(inputs: LossInputs, **options) -> scalar float32

A config names its main loss (`config.loss`, options in `config.loss_kwargs`) and may add weighted terms
(`config.losses.<name> = weight`, options in `config.loss_options.<name>`; 0 removes a term, config.loss's too);
`jaxcolor.losses.objective` adds them up.
Each registry line says which heads a term fits and what else it needs (`NEEDS`); `builders.check_config`
fails before compilation naming the term and the missing piece.

The per-pixel kernels below keep their array signature (prediction, target, *, pixel_weights, mask):
- regression (l2, l1, huber): prediction and target in the model's units (ab / 110, or RGB), (B, H, W, C);
  the per-pixel loss is the mean over channels (Keras' MSE / MAE convention used by the seeds);
- cross_entropy: logits (B, H, W, Q) (or a `head_loss.HeadInput`, fused with the 1x1 projection on CPU) and
  a `quantize.SoftTarget` of indices / weights (B, H, W, K): only the K target bins are gathered;
- pixel_weights (B, H, W) (class rebalancing) default 1; mask (B,) or (B, H, W) default all valid; the result
  is sum(weight * mask * per_pixel) / max(sum(mask), 1).
Terms on decoded colors: `l1_decoded` / `l2_decoded` (the annealed-mean ab of a classification head against
the true ab, in ab / 110 units like the regression losses) and `colorfulness` (|CF(prediction) - CF(truth)|
per photo, DDColor's push toward natural saturation, / 100).
Terms with state (`stateful=True`): the registry holds a class whose keyword fields are the options; an
instance has `init(rng) -> state`, `__call__(x, state) -> scalar`, optionally `update(x, state, axis_name) ->
(state, metrics)` (run in the same compiled step) and `check()` (run before compilation). Their state lives in
`TrainState.loss_state[name]`, checkpointed with the model: `perceptual` (frozen VGG16 features,
`jaxcolor.losses.perceptual`) and `adversarial` (a PatchGAN discriminator with its own optimizer,
`jaxcolor.losses.adversarial`).

To add a loss: write `def my_term(x: LossInputs, *, option=...) -> Array` and add one line to LOSSES.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxcolor.colorspace import quantize
from jaxcolor.task import HEADS  # the registry's lines name the heads a term fits
from jaxcolor.evaluation import metrics
from jaxcolor.losses import head_loss
from jaxcolor.losses.adversarial import Adversarial
from jaxcolor.losses.inputs import LossInputs, pixel_scale as _pixel_scale
from jaxcolor.losses.perceptual import Perceptual

Array = jnp.ndarray


def _reduce(per_pixel: Array, pixel_weights: Array | None, mask: Array | None) -> Array:
  """Weighted mean of per_pixel (B, H, W) over valid pixels."""
  return jnp.sum(per_pixel * _pixel_scale(per_pixel.shape, pixel_weights, mask))


def l2(prediction: Array, target: Array, *, pixel_weights: Array | None = None,
       mask: Array | None = None) -> Array:
  """Mean squared error over ab channels."""
  err = jnp.asarray(prediction, jnp.float32) - jnp.asarray(target, jnp.float32)
  return _reduce(jnp.mean(err ** 2, axis=-1), pixel_weights, mask)


def l1(prediction: Array, target: Array, *, pixel_weights: Array | None = None,
       mask: Array | None = None) -> Array:
  """Mean absolute error over ab channels."""
  err = jnp.asarray(prediction, jnp.float32) - jnp.asarray(target, jnp.float32)
  return _reduce(jnp.mean(jnp.abs(err), axis=-1), pixel_weights, mask)


def huber(prediction: Array, target: Array, *, pixel_weights: Array | None = None,
          mask: Array | None = None, delta: float = 10.0 / 110.0) -> Array:
  """Huber loss over ab channels: quadratic below `delta` (default one 10-unit ab bin), linear above."""
  err = jnp.abs(jnp.asarray(prediction, jnp.float32) - jnp.asarray(target, jnp.float32))
  quad = jnp.minimum(err, delta)
  per_channel = 0.5 * quad ** 2 + delta * (err - quad)
  return _reduce(jnp.mean(per_channel, axis=-1), pixel_weights, mask)


def cross_entropy(logits: Array | head_loss.HeadInput, target: quantize.SoftTarget, *,
                  pixel_weights: Array | None = None, mask: Array | None = None) -> Array:
  """Cross-entropy H(target, softmax(logits)) per pixel from the K target bins.

  Uses log_softmax(z)_q = z_q - logsumexp(z): only the K gathered logits and the normalizer are needed.
  Given a `head_loss.HeadInput`, computes the head's projection with the loss, chunk by chunk, where
  `head_loss.use_fused` says so (on CPU).
  """
  if isinstance(logits, head_loss.HeadInput):
    if head_loss.use_fused(logits):
      scale = _pixel_scale(logits.features.shape[:3], pixel_weights, mask)
      return head_loss.cross_entropy(logits, target.indices, target.weights, scale)
    logits = logits.logits()
  logits = jnp.asarray(logits, jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)  # (B, H, W)
  picked = jnp.take_along_axis(logits, target.indices, axis=-1)  # (B, H, W, K)
  weights = jnp.asarray(target.weights, jnp.float32)
  per_pixel = lse * jnp.sum(weights, axis=-1) - jnp.sum(weights * picked, axis=-1)
  return _reduce(per_pixel, pixel_weights, mask)


def l1_decoded(x: LossInputs, *, temperature: float | None = None, rebalanced: bool = False) -> Array:
  """|annealed-mean ab - true ab| / 110, mean over channels and pixels (optionally class-rebalanced)."""
  err = jnp.abs(x.pred_ab(temperature) - x.ab) / 110.0
  return x.mean_over_pixels(jnp.mean(err, axis=-1), rebalanced=rebalanced)


def l2_decoded(x: LossInputs, *, temperature: float | None = None, rebalanced: bool = False) -> Array:
  """(annealed-mean ab - true ab)^2 / 110^2, mean over channels and pixels (optionally class-rebalanced)."""
  err = (x.pred_ab(temperature) - x.ab) / 110.0
  return x.mean_over_pixels(jnp.mean(err ** 2, axis=-1), rebalanced=rebalanced)


def colorfulness(x: LossInputs, *, temperature: float | None = None, eps: float = 1e-3) -> Array:
  """|CF(predicted RGB) - CF(true RGB)| / 100 per photo (Hasler-Suesstrunk on [0, 255]), mean over photos.

  `eps` inside the square roots keeps the gradient finite for a gray prediction (CF's sqrt at 0)."""
  truth = jax.lax.stop_gradient(metrics.colorfulness(x.true_rgb(), eps=eps))
  return x.mean_over_examples(jnp.abs(metrics.colorfulness(x.pred_rgb(temperature), eps=eps) - truth)) / 100.0


def _kernel(fn: Callable[..., Array]) -> Callable[..., Array]:
  """A per-pixel kernel as a term: the model outputs against the head's target, rebalancing weights, mask."""
  @functools.wraps(fn)
  def term(x: LossInputs, **options: Any) -> Array:
    return fn(x.outputs, x.target, pixel_weights=x.pixel_weights, mask=x.mask, **options)
  return term


# What a term may need beyond the model outputs, and when a config provides it (checked by builders).
NEEDS = {
    "logits": "a classification head (config.head='classification')",
    "lab_target": "ab targets (config.target_space='lab')",
}


@dataclasses.dataclass(frozen=True)
class LossSpec:
  fn: Callable[..., Any]  # fn(inputs: LossInputs, **options) -> scalar; stateful: the term's class
  heads: tuple[str, ...]  # the model heads this term fits
  needs: tuple[str, ...] = ()  # keys of NEEDS
  head_input: bool = False  # accepts a head_loss.HeadInput as outputs: the head may defer its 1x1 projection
  kernel: Callable[..., Array] | None = None  # the array-signature function, for per-pixel losses
  stateful: bool = False  # fn(**options) is an object with init / __call__(x, state) [/ update / check]

  @property
  def head(self) -> str:
    """The one head of a single-head term (the per-pixel losses)."""
    return self.heads[0]


LOSSES: dict[str, LossSpec] = {
    "l2": LossSpec(_kernel(l2), ("regression",), kernel=l2),
    "l1": LossSpec(_kernel(l1), ("regression",), kernel=l1),
    "huber": LossSpec(_kernel(huber), ("regression",), kernel=huber),
    "cross_entropy": LossSpec(_kernel(cross_entropy), ("classification",), head_input=True, kernel=cross_entropy),
    "l1_decoded": LossSpec(l1_decoded, ("classification",), needs=("logits",)),
    "l2_decoded": LossSpec(l2_decoded, ("classification",), needs=("logits",)),
    "colorfulness": LossSpec(colorfulness, HEADS),
    "perceptual": LossSpec(Perceptual, HEADS, stateful=True),
    "adversarial": LossSpec(Adversarial, HEADS, stateful=True),
}


def get_loss(name: str, **options: Any) -> Callable[..., Array]:
  """The per-pixel kernel `name` with its options bound (array signature; e.g. delta for huber)."""
  spec = loss_spec(name)
  if spec.kernel is None:
    raise ValueError(f"loss {name!r} is a term on LossInputs, not a per-pixel kernel; use get_term")
  check_options(name, options)
  return functools.partial(spec.kernel, **options)


def get_term(name: str, **options: Any) -> Callable[..., Array]:
  """The term `name` with its options bound: a function of LossInputs (of LossInputs and its state for a
  stateful term: then the term object, whose option errors raise ValueError here)."""
  check_options(name, options)
  spec = loss_spec(name)
  return spec.fn(**options) if spec.stateful else functools.partial(spec.fn, **options)


def check_options(name: str, options: dict[str, Any]) -> None:
  """Unknown loss names or options fail here, naming them."""
  spec = loss_spec(name)
  fn = spec.kernel or spec.fn
  try:
    if spec.kernel is not None:
      inspect.signature(fn).bind_partial(None, None, **options)
    elif spec.stateful:
      inspect.signature(fn).bind_partial(**options)
    else:
      inspect.signature(fn).bind_partial(None, **options)
  except TypeError as e:
    raise ValueError(f"loss {name!r} does not take options {sorted(options)}: {e}") from e


def loss_spec(name: str) -> LossSpec:
  if name not in LOSSES:
    raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(sorted(LOSSES))}")
  return LOSSES[name]
