"""Everything a loss term may need about one training batch, in one object: `LossInputs`.

Why one object: a loss on decoded colors, on RGB, on colorfulness or through a discriminator needs more than
(prediction, target). The train step builds a `LossInputs` once per batch and hands the same object to every
term of the objective (`jaxcolor.losses.objective`); a term takes what it needs and declares it in its registry line
(`losses.LossSpec.needs`), which `builders.check_config` checks before anything is compiled.

Shapes: B batch, H x W the input size, h x w the model's output size (H / output_stride), Q the ab bins.
Everything here is differentiable where it depends on `outputs` (the annealed-mean decoding, Lab -> RGB).
"""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxcolor.colorspace import color
from jaxcolor.losses import head_loss
from jaxcolor import task as task_lib

Array = jnp.ndarray


def pixel_scale(shape: tuple[int, ...], pixel_weights: Array | None, mask: Array | None) -> Array:
  """(B, H, W) factors that turn a sum over pixels into the weighted mean over valid pixels."""
  valid = jnp.ones(shape, jnp.float32)
  if mask is not None:
    mask = jnp.asarray(mask, jnp.float32)
    valid = valid * mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim))
  scale = valid / jnp.maximum(jnp.sum(valid), 1.0)
  return scale if pixel_weights is None else scale * jnp.asarray(pixel_weights, jnp.float32)


@flax.struct.dataclass
class LossInputs:
  """One batch as the loss terms see it (a pytree; `task` is static)."""
  outputs: Any  # the model's: logits (B, h, w, Q), ab / 110 or RGB (B, h, w, C), or a head_loss.HeadInput
  images: Array  # uint8 RGB (B, H, W, 3): the batch as the input pipeline shipped it
  l: Array  # (B, H, W, 1) L in [0, 100]: the model's input
  ab: Array  # (B, h, w, 2) true ab in Lab units at the output resolution
  target: Any  # the head's target at the output resolution: ab / 110, RGB, or a quantize.SoftTarget
  pixel_weights: Array | None  # (B, h, w) class-rebalancing weights (classification with rebalancing) or None
  mask: Array | None  # (B,) valid examples (False: padding) or None
  step: Array  # scalar int32: the step being taken
  rng: Array  # a key for this step (already folded with the step): terms fold in their own constants
  task: task_lib.ColorTask = flax.struct.field(pytree_node=False)
  loss_state: Any = flax.struct.field(default_factory=dict)  # {term: state} of the stateful terms (frozen here)

  # -- the prediction in each form ------------------------------------------------------------------------

  def logits(self) -> Array:
    """(B, h, w, Q) float32 logits of a classification head."""
    if self.task.head != "classification":
      raise ValueError("logits: the model has a regression head")
    out = self.outputs.logits() if isinstance(self.outputs, head_loss.HeadInput) else self.outputs
    return jnp.asarray(out, jnp.float32)

  def pred_ab(self, temperature: float | None = None) -> Array:
    """(B, h, w, 2) predicted ab in Lab units (`ColorTask.decode`): the annealed mean at `temperature` (default:
    the run's) for a classification head (differentiable, unlike the mode), the rescaled output for regression."""
    if self.task.head == "classification":
      return self.task.decode(self.logits(), "annealed_mean", temperature)
    return self.task.decode(self.outputs)

  def pred_rgb(self, temperature: float | None = None) -> Array:
    """(B, H, W, 3) predicted RGB in [0, 1] at the input size: the input L joined with the upsampled ab."""
    if self.task.target_space == "rgb":
      rgb = task_lib.upsample(jnp.asarray(self.outputs, jnp.float32), self.l.shape[1], self.l.shape[2])
      return jnp.clip(rgb, 0.0, 1.0)
    ab = task_lib.upsample(self.pred_ab(temperature), self.l.shape[1], self.l.shape[2])
    return color.l_ab_to_rgb(self.l, ab)

  def true_rgb(self) -> Array:
    """(B, H, W, 3) the batch's RGB in [0, 1]."""
    return color.to_float_rgb(self.images)

  # -- reductions ------------------------------------------------------------------------------------------

  def example_mask(self) -> Array:
    """(B,) float32: 1 for valid examples."""
    b = self.images.shape[0]
    return jnp.ones((b,), jnp.float32) if self.mask is None else jnp.asarray(self.mask, jnp.float32)

  def mean_over_pixels(self, per_pixel: Array, *, rebalanced: bool = False) -> Array:
    """Mean of (B, h', w') values over the valid examples' pixels; `rebalanced`: weighted by the class-
    rebalancing weights (resized to h' x w' when the loss works at another resolution)."""
    w = self.pixel_weights if rebalanced else None
    if w is not None and w.shape[1:] != per_pixel.shape[1:]:
      w = jax.image.resize(w, per_pixel.shape, "nearest")
    return jnp.sum(per_pixel * pixel_scale(per_pixel.shape, w, self.mask))

  def mean_over_examples(self, per_example: Array) -> Array:
    """Mean of (B,) values over the valid examples."""
    m = self.example_mask()
    return jnp.sum(per_example * m) / jnp.maximum(jnp.sum(m), 1.0)
