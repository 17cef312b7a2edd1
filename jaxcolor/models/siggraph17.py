"""The user-guided colorization network of Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with
Learned Deep Priors", SIGGRAPH; the anchor repository's `siggraph17`), its local-hints network.

Input: L with the hint channels (`jaxcolor.hints`), as the paper's: (L - 50) / 100, the hint ab / 110 and the
mask - 0.5, four channels at full resolution. Body (the paper's Table 4 / the released network): ten conv
blocks of 3x3 convs + ReLU, BatchNorm at the end of blocks 1-9;
  1: 64 x2 (H)     2: 128 x2 (H/2)     3: 256 x3 (H/4)     4: 512 x3 (H/8)
  5, 6: 512 x3, dilation 2 (H/8)       7: 512 x3 (H/8)
  8: 4x4 stride-2 transposed conv to 256 + a 3x3 shortcut from block 3, ReLU, 256 x2 (H/4)
  9: the same to 128 with the shortcut from block 2, then 128 x1 (H/2)
  10: the same to 128 with the shortcut from block 1, then 128 x1 with leaky ReLU 0.2 (H)
Downsampling between blocks 1-4 keeps every other pixel (the released network's strided subsampling).
The regression head (1x1 -> ab / 110, tanh) is the paper's; `head="classification"` puts the 313-bin head on the
same full-resolution features (the paper's classification branch sits on block 8 and is trained jointly; here
one head per model). `width` scales every layer (tiny test variants). Hints are optional at call time (None:
no hints, automatic colorization). 34.1M parameters at width 1, too many for a 2-core CPU to train well: the
shipped `guided` model is the EfficientNet U-Net with a hint branch (`efficientnet_unet`, guided=True).
"""
from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor import hints as hints_lib
from jaxcolor.models.layers import ColorModel, batch_norm, center_l, check_divisible, scale_width

# (block, channels, convs, dilation) of the encoder half, H to H/8
ENCODER = ((1, 64, 2, 1), (2, 128, 2, 1), (3, 256, 3, 1), (4, 512, 3, 1), (5, 512, 3, 2), (6, 512, 3, 2),
           (7, 512, 3, 1))
# (block, channels, convs after the merge, shortcut from block) of the decoder half, H/8 to H
DECODER = ((8, 256, 2, 3), (9, 128, 1, 2), (10, 128, 1, 1))


class SIGGRAPH17(ColorModel):
  """Zhang et al. 2017's local-hints colorization network (see the module docstring)."""
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 256

  width: float = 1.0

  @property
  def takes_hints(self) -> bool:
    return True

  def _conv(self, features: int, name: str, kernel: int = 3, dilation: int = 1) -> nn.Module:
    pad = dilation * (kernel - 1) // 2
    return self.conv(scale_width(features, self.width), (kernel, kernel), padding=((pad, pad), (pad, pad)),
                     kernel_dilation=dilation, dtype=self.dtype, param_dtype=self.param_dtype, name=name)

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool, hints: jax.Array | None = None) -> jax.Array:
    check_divisible(l, 8, "SIGGRAPH17")
    hints = hints_lib.no_hints(l) if hints is None else hints.astype(jnp.float32)
    x = jnp.concatenate([center_l(l, 100.0, jnp.float32), hints[..., :2], hints[..., 2:] - 0.5], -1)
    x = x.astype(self.dtype)  # (B, H, W, 4)
    bn = lambda name: batch_norm(train, self.dtype, self.param_dtype, name=name, axis_name=self.bn_axis_name)
    feats = {}
    for block, channels, convs, dilation in ENCODER:
      if block in (2, 3, 4):
        x = x[:, ::2, ::2]  # the released network's strided subsampling
      for i in range(convs):
        x = nn.relu(self._conv(channels, f"conv{block}_{i + 1}", dilation=dilation)(x))
      x = feats[block] = bn(f"bn{block}")(x)
    for block, channels, convs, source in DECODER:
      up = self.conv_transpose(scale_width(channels, self.width), (4, 4), strides=(2, 2), padding="SAME",
                               dtype=self.dtype, param_dtype=self.param_dtype, name=f"conv{block}_up")(x)
      x = nn.relu(up + self._conv(channels, f"conv{block}_short")(feats[source]))
      for i in range(convs):
        x = self._conv(channels, f"conv{block}_{i + 1}")(x)
        x = nn.leaky_relu(x, 0.2) if block == 10 else nn.relu(x)
      if block != 10:
        x = bn(f"bn{block}")(x)
    return self.output_head(channels=2, activation="tanh")(x)  # (B, H, W, 2 | num_bins)
