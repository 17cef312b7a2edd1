"""Colorization autoencoder (seed 003 sec. 5, "Baseline Autoencoder"; seed 001, "Deep Learning Final Project").

Seed 003 treats colorization as the reverse of denoising: an encoder of 4 conv blocks compresses the grayscale
image to a latent map and a decoder of 4 blocks rebuilds the colors from it, with ReLU inside and a squashing
output. It does so in two color spaces, both kept here through `target`:
- "lab": predict ab / AB_SCALE (2 channels, tanh), joined with the input L afterwards (AE-LAB model);
- "rgb": predict the RGB image directly (3 channels, sigmoid, in [0, 1]) (AE-RGB model).
As in the seeds, the encoder downsamples with stride-2 convs (no pooling) and the decoder upsamples by nearest
neighbour repetition followed by convs (Keras `UpSampling2D` + `Conv2D`), unlike the transposed convs of
`cnn.CNNBaseline`. Seed 001 trains at 256 x 256.
"""
from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.layers import ColorModel, ConvBN, center_l, check_divisible

TARGETS = ("lab", "rgb")


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """(B, H, W, C) -> (B, factor H, factor W, C) by repeating pixels."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class Autoencoder(ColorModel):
  """4-block conv encoder + 4-block upsampling decoder, no skip connections (seed 003 sec. 5.1).

  Encoder block i: 3x3 conv stride 2 then 3x3 conv, `features[i]` channels (1/16 resolution at the bottleneck).
  Decoder block j: nearest x2 upsampling then two 3x3 convs, channels features[-2], ..., features[0], features[0].
  """
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 256  # seed 001: images resized to 256 x 256

  target: str = "lab"  # "lab": ab / AB_SCALE with tanh; "rgb": RGB in [0, 1] with sigmoid
  features: tuple[int, ...] = (64, 128, 256, 512)  # encoder block channels (4 blocks in seed 003)
  use_bn: bool = True  # the seeds' Keras models had none; BatchNorm makes training from scratch far easier

  def __post_init__(self) -> None:
    if self.target not in TARGETS:
      raise ValueError(f"unknown target {self.target!r}; choose one of: {', '.join(TARGETS)}")
    if self.target == "rgb" and self.head == "classification":
      raise ValueError("target='rgb' needs head='regression': the classification bins live in ab space")
    super().__post_init__()

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool) -> jax.Array:
    if not self.features:
      raise ValueError("Autoencoder needs at least one block in `features`")
    check_divisible(l, 2 ** len(self.features), "Autoencoder")
    kw = dict(use_bn=self.use_bn, conv=self.conv, **self.layer_kwargs)
    x = center_l(l, 50.0, self.dtype)  # (B, H, W, 1) in [-1, 1] (seed 003 sec. 3.1)
    for i, f in enumerate(self.features):  # (B, h, w, .) -> (B, h/2, w/2, f)
      x = ConvBN(f, strides=2, name=f"enc{i}_stride", **kw)(x, train=train)
      x = ConvBN(f, name=f"enc{i}_conv", **kw)(x, train=train)
    # x: (B, H / 2^n, W / 2^n, features[-1]), the latent map
    decoder = tuple(reversed(self.features[:-1])) + (self.features[0],)
    for j, f in enumerate(decoder):  # (B, h, w, .) -> (B, 2h, 2w, f)
      x = upsample_nearest(x)
      x = ConvBN(f, name=f"dec{j}_conv0", **kw)(x, train=train)
      x = ConvBN(f, name=f"dec{j}_conv1", **kw)(x, train=train)
    if self.target == "rgb":
      return self.output_head(channels=3, activation="sigmoid")(x)  # (B, H, W, 3) in [0, 1]
    return self.output_head(channels=2, activation="tanh")(x)  # (B, H, W, 2 | num_bins)
