"""Color hints into an encoder-decoder: one additive feature map per resolution, starting at zero.

`HintBranch` turns the hint channels (B, H, W, 3) (`jaxcolor.hints`: ab / 110 and a mask) into a feature map
for each requested stride, which the model adds to its own features there (the encoder's stem, the decoder's
levels). Per stride, the hints are summarized cell by cell, scale-free: the mean hint ab over the cell's
hinted pixels and whether any pixel is hinted (a 1-pixel hint counts as much in a 32 x 32 cell as in a 2 x 2
one), then a 3x3 conv -> ReLU -> 3x3 conv to the level's width. The last conv starts at zero, so a pretrained
automatic colorizer given a branch computes exactly what it did (fine-tuning starts from the shipped model),
and every branch parameter lives under the model's "hints" scope (`init_from_exclude=("params/hints",)`).

To give hints to another encoder-decoder: a `guided: bool` field; when set, call
`HintBranch(strides, features, conv=self.conv, name="hints")(hints)` and add each returned map where its
resolution is, e.g. `layers.decode_with_skips(..., extras=maps)` (see efficientnet_unet and resnet_unet). The
model's `takes_hints` property then tells the train step to simulate hints and colorize to take them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
ModuleDef = Any


def summarize(hints: jax.Array, stride: int) -> jax.Array:
  """(B, H, W, 3) hint channels -> (B, H / stride, W / stride, 3): mean hinted ab per cell, any-hint flag."""
  if stride == 1:
    return hints
  b, h, w, _ = hints.shape
  cells = hints.reshape(b, h // stride, stride, w // stride, stride, 3).sum(axis=(2, 4))  # (B, h, w, 3)
  count = cells[..., 2:]
  return jnp.concatenate([cells[..., :2] / jnp.maximum(count, 1.0), (count > 0).astype(hints.dtype)], -1)


class HintBranch(nn.Module):
  """Hint channels -> [(B, H / s, W / s, f) for s, f in zip(strides, features)], all zero at initialization."""
  strides: Sequence[int]
  features: Sequence[int]
  width: int = 32
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, hints: jax.Array) -> list[jax.Array]:
    if len(self.strides) != len(self.features):
      raise ValueError(f"HintBranch: {len(self.strides)} strides but {len(self.features)} feature widths")
    out = []
    for i, (s, f) in enumerate(zip(self.strides, self.features)):
      conv = lambda n, name, init=nn.initializers.lecun_normal(): self.conv(
          n, (3, 3), padding="SAME", kernel_init=init, dtype=self.dtype, param_dtype=self.param_dtype, name=name)
      x = summarize(hints.astype(jnp.float32), s).astype(self.dtype)
      x = nn.relu(conv(self.width, f"level{i}_conv0")(x))
      out.append(conv(f, f"level{i}_conv1", nn.initializers.zeros_init())(x))  # zero: the model unchanged at init
    return out
