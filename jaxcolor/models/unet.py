"""U-Net colorizer (seed 000, "Evaluation of Image Colourization Approaches", KTH).

Seed 000 colorizes 64 x 64 ImageNet images with one U-Net used two ways: regression of ab and classification
over the ab bins (the classification gave more vibrant colors). The skip connections carry the full-resolution
edges of L straight to the decoder, so predicted colors line up with object boundaries, which the plain
encoder-decoders in `cnn.py` and `autoencoder.py` must rebuild from the bottleneck.

Layout (Ronneberger et al. 2015): each level is two 3x3 conv-BN-ReLU; 2x2 max-pooling between encoder levels;
2x2 stride-2 transposed conv up, concatenation with the encoder's skip, two 3x3 conv-BN-ReLU. Depth and widths
come from `features` (one entry per level, the last is the bottleneck).
"""
from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.layers import ColorModel, ConvBN, Dtype, ModuleDef, center_l, check_divisible, max_pool_2x2


class DoubleConv(nn.Module):
  """Two 3x3 conv -> BatchNorm -> ReLU at one resolution: (B, H, W, C) -> (B, H, W, features)."""
  features: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  bn_axis_name: str | None = None
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for i in range(2):
      x = ConvBN(self.features, dtype=self.dtype, param_dtype=self.param_dtype, bn_axis_name=self.bn_axis_name,
                 conv=self.conv, name=f"conv{i}")(x, train=train)
    return x


class UNet(ColorModel):
  """U-Net with skip connections; `features=(64, 128, 256, 512)` means 3 poolings and a 512-wide bottleneck."""
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 64  # seed 000 works on 64 x 64 images

  features: tuple[int, ...] = (64, 128, 256, 512)  # channels per level, top to bottleneck

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool) -> jax.Array:
    if len(self.features) < 2:
      raise ValueError("UNet needs at least two levels in `features` (one encoder level and the bottleneck)")
    check_divisible(l, 2 ** (len(self.features) - 1), "UNet")
    kw = dict(conv=self.conv, **self.layer_kwargs)
    x = center_l(l, 50.0, self.dtype)  # (B, H, W, 1) in [-1, 1]
    skips = []
    for i, f in enumerate(self.features[:-1]):  # (B, h, w, .) -> skip (B, h, w, f) -> (B, h/2, w/2, f)
      x = DoubleConv(f, name=f"down{i}", **kw)(x, train=train)
      skips.append(x)
      x = max_pool_2x2(x, self.max_pool)
    x = DoubleConv(self.features[-1], name="bottleneck", **kw)(x, train=train)  # (B, H/2^d, W/2^d, features[-1])
    for i, (f, skip) in enumerate(zip(reversed(self.features[:-1]), reversed(skips))):
      x = self.conv_transpose(f, (2, 2), strides=(2, 2), padding="VALID", dtype=self.dtype,
                              param_dtype=self.param_dtype, name=f"up{i}_deconv")(x)  # (B, 2h, 2w, f)
      x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)  # (B, 2h, 2w, 2f)
      x = DoubleConv(f, name=f"up{i}", **kw)(x, train=train)  # (B, 2h, 2w, f)
    return self.output_head(channels=2, activation="tanh")(x)  # (B, H, W, 2 | num_bins)
