"""Baseline CNN (seed 003, "Automated Colorization Of Grayscale Images Using Deep Learning Techniques", sec. 4).

A plain encoder-decoder without skips: per stage a 3x3 conv and a 3x3 stride-2 conv (BatchNorm instead of bias,
ReLU), down to 1/16 of the input; then stride-2 3x3 transposed convs back to full resolution and a 3x3 conv to
the output with tanh (sec. 4.1, Figure 4: 224 -> 14 -> 224, channels 64-128-256-512 then 512-256-128-64).
It is the benchmark the paper's other models are compared with.
"""
from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax

from jaxcolor.models.layers import ColorModel, ConvBN, UpConvBN, center_l, check_divisible


class CNNBaseline(ColorModel):
  """Strided-conv encoder, transposed-conv decoder, no skip connections (seed 003 sec. 4)."""
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 224  # seed 003 sec. 4.1 trains on 224 x 224

  features: tuple[int, ...] = (64, 128, 256, 512)  # channels per encoder stage; decoder mirrors them

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool) -> jax.Array:
    if not self.features:
      raise ValueError("CNNBaseline needs at least one stage in `features`")
    check_divisible(l, 2 ** len(self.features), "CNNBaseline")
    kw = self.layer_kwargs
    x = center_l(l, 50.0, self.dtype)  # (B, H, W, 1) in [-1, 1] (seed 003 sec. 3.1)
    for i, f in enumerate(self.features):  # each stage: (B, h, w, .) -> (B, h/2, w/2, f)
      x = ConvBN(f, name=f"down{i}_conv", conv=self.conv, **kw)(x, train=train)
      x = ConvBN(f, strides=2, name=f"down{i}_stride", conv=self.conv, **kw)(x, train=train)
    for i, f in enumerate(reversed(self.features)):  # each stage: (B, h, w, .) -> (B, 2h, 2w, f)
      x = UpConvBN(f, name=f"up{i}", conv=self.conv_transpose, **kw)(x, train=train)
    # (B, H, W, features[0]) -> (B, H, W, 2 | num_bins), float32
    return self.output_head(channels=2, activation="tanh", kernel_size=3)(x)
