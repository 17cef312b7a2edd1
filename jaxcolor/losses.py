"""Loss registry: regression on ab (l2, l1, huber) and cross-entropy over ab bins from sparse soft targets.

Every loss has the same signature, so the training step never branches on the loss name:

    loss(prediction, target, *, pixel_weights=None, mask=None, **options) -> scalar float32

- regression losses: prediction and target are ab in the model's units (ab / 110), shape (B, H, W, 2);
  the per-pixel loss is the mean over the two channels (Keras' MSE / MAE convention used by the seeds).
- classification losses: prediction is logits (B, H, W, Q) and target a `quantize.SoftTarget` of
  indices / weights (B, H, W, K); only the K target bins are gathered, no dense one-hot target is built.
  A loss registered with `head_input=True` also accepts a `head_loss.HeadInput` (the features and the 1x1
  head's parameters, from a model built with `defer_classifier=True`) and may compute the projection
  itself: `cross_entropy` then never forms the (B, H, W, Q) logits on CPU (`jaxcolor.head_loss`).
- pixel_weights (B, H, W): e.g. class-rebalancing weights (`prior.pixel_weights`); default 1.
- mask: (B,) for padded examples or (B, H, W) for padded pixels; default all valid.
The result is sum(weight * mask * per_pixel) / max(sum(mask), 1): the mean over valid pixels.

To add a loss: write a function with that signature and add it to LOSSES with its head ("regression" or
"classification"), which configs are checked against before anything is compiled.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxcolor import head_loss, quantize

Array = jnp.ndarray


def _pixel_scale(shape: tuple[int, ...], pixel_weights: Array | None, mask: Array | None) -> Array:
  """(B, H, W) factors that turn a sum over pixels into the weighted mean over valid pixels."""
  valid = jnp.ones(shape, jnp.float32)
  if mask is not None:
    mask = jnp.asarray(mask, jnp.float32)
    valid = valid * mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim))
  scale = valid / jnp.maximum(jnp.sum(valid), 1.0)
  return scale if pixel_weights is None else scale * jnp.asarray(pixel_weights, jnp.float32)


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


@dataclasses.dataclass(frozen=True)
class LossSpec:
  fn: Callable[..., Array]
  head: str  # "regression" or "classification": the model head this loss needs
  head_input: bool = False  # also takes a head_loss.HeadInput: train with the model's defer_classifier=True


LOSSES: dict[str, LossSpec] = {
    "l2": LossSpec(l2, "regression"),
    "l1": LossSpec(l1, "regression"),
    "huber": LossSpec(huber, "regression"),
    "cross_entropy": LossSpec(cross_entropy, "classification", head_input=True),
}


def get_loss(name: str, **options: Any) -> Callable[..., Array]:
  """The loss `name` with its options bound (e.g. delta for huber); unknown names or options fail here."""
  fn = loss_spec(name).fn
  try:
    inspect.signature(fn).bind_partial(None, None, **options)
  except TypeError as e:
    raise ValueError(f"loss {name!r} does not take options {sorted(options)}: {e}") from e
  return functools.partial(fn, **options)


def loss_spec(name: str) -> LossSpec:
  if name not in LOSSES:
    raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(sorted(LOSSES))}")
  return LOSSES[name]
