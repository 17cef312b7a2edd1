"""What a colorizer learns: uint8 RGB batch -> (model input L, target, per-pixel weights), and outputs -> ab.

All on device, in jnp: the host only ever ships uint8 RGB. One `ColorTask` covers the three setups of the
seeds: regression of ab (ab / 110), regression of RGB (seed 003's RGB autoencoder), and classification over
the quantized ab bins with sparse soft targets and optional class rebalancing (Zhang et al. 2016).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colorspace import color, prior, quantize

Array = jnp.ndarray
HEADS = ("regression", "classification")  # what a model's last layer predicts: ab (or RGB), or logits over ab bins
TARGET_SPACES = ("lab", "rgb")


def pool(x: Array, stride: int) -> Array:
  """Mean over stride x stride blocks: (B, H, W, C) -> (B, H / stride, W / stride, C)."""
  if stride == 1:
    return x
  b, h, w, c = x.shape
  return x.reshape(b, h // stride, stride, w // stride, stride, c).mean(axis=(2, 4))


def upsample(x: Array, height: int, width: int) -> Array:
  """Bilinear resize of (B, h, w, C) to (B, height, width, C); identity when the size already matches."""
  if x.shape[1:3] == (height, width):
    return x
  return jax.image.resize(x, (x.shape[0], height, width, x.shape[-1]), "bilinear")


@dataclasses.dataclass(frozen=True, eq=False)
class ColorTask:
  """Targets and decoding for one model head; hashed by identity so it can be a static jit argument.

  head: "regression" or "classification"; target_space: "lab" (predict ab) or "rgb" (predict RGB in [0, 1],
  regression only); output_stride: input size / model output size (4 for eccv16: targets are pooled).
  bins / class_weights (Q,): the ab bins and rebalancing weights (None: no rebalancing), classification only.
  """
  head: str = "regression"
  target_space: str = "lab"
  output_stride: int = 1
  bins: quantize.ABBins | None = None
  class_weights: np.ndarray | None = None
  soft_k: int = quantize.DEFAULT_K
  soft_sigma: float = quantize.DEFAULT_SIGMA
  decoding: str = "annealed_mean"
  temperature: float = quantize.DEFAULT_TEMPERATURE

  def __post_init__(self):
    if self.head not in HEADS:
      raise ValueError(f"unknown head {self.head!r}; choose one of: {', '.join(HEADS)}")
    if self.target_space not in TARGET_SPACES:
      raise ValueError(f"unknown target space {self.target_space!r}; choose one of: {', '.join(TARGET_SPACES)}")
    if self.head == "classification" and (self.bins is None or self.target_space != "lab"):
      raise ValueError("classification needs ab bins and target_space 'lab'")

  def inputs_and_targets(self, images: Array) -> tuple[Array, Any, Array | None]:
    """uint8 (B, H, W, 3) -> (L (B, H, W, 1) in [0, 100], target, pixel weights (B, h, w) or None)."""
    l, _, target, weights = self.batch_targets(images)
    return l, target, weights

  def batch_targets(self, images: Array) -> tuple[Array, Array, Any, Array | None]:
    """uint8 (B, H, W, 3) -> (L (B, H, W, 1), true ab (B, h, w, 2) in Lab units at the output resolution,
    the head's target there, pixel weights (B, h, w) or None)."""
    l, ab = color.rgb_to_l_ab(images)
    ab = pool(ab, self.output_stride)
    if self.target_space == "rgb":
      return l, ab, pool(color.to_float_rgb(images), self.output_stride), None
    if self.head == "regression":
      return l, ab, color.ab_to_unit(ab), None
    target = quantize.soft_encode(ab, self.bins, k=self.soft_k, sigma=self.soft_sigma)
    weights = None if self.class_weights is None else prior.pixel_weights(target, self.class_weights)
    return l, ab, target, weights

  def full_ab(self, images: Array) -> Array:
    """uint8 (B, H, W, 3) -> true ab (B, H, W, 2) in Lab units at the input resolution (hint simulation)."""
    return color.rgb_to_l_ab(images)[1]

  def decode(self, outputs: Array, decoding: str | None = None, temperature: Array | float | None = None) -> Array:
    """Model outputs (B, h, w, C) -> ab (B, h, w, 2) in Lab units at the output resolution: the one decoder
    (inference, loss terms on decoded colors, metrics). Classification: `decoding` at `temperature` (default:
    the run's; the annealed mean is differentiable, the mode is not); RGB regression: the Lab of the clipped RGB."""
    outputs = jnp.asarray(outputs, jnp.float32)
    if self.head == "classification":
      return quantize.decode(outputs, self.bins, decoding or self.decoding,
                             self.temperature if temperature is None else temperature)
    if self.target_space == "rgb":
      return color.rgb_to_lab(jnp.clip(outputs, 0.0, 1.0))[..., 1:]
    return color.unit_to_ab(outputs)

  def to_ab(self, outputs: Array, l: Array, decoding: str | None = None,
            temperature: Array | float | None = None) -> Array:
    """Model outputs -> ab (B, H, W, 2) in Lab units at the input resolution of L (B, H, W, 1)."""
    return upsample(self.decode(outputs, decoding, temperature), l.shape[1], l.shape[2])
