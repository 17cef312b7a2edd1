"""Zhang, Isola and Efros, "Colorful Image Colorization" (ECCV 2016): the network as released.

Spec from the paper and its released network (docs/zhang2016.md): input (L - 50) / 100; blocks of 3x3 convs
with ReLU and a BatchNorm after each block; three stride-2 convs bring the map to 1/8, dilated 512-wide blocks
widen the receptive field without further downsampling, and a 4x4 stride-2 transposed conv returns to 1/4, where
a 1x1 conv emits 313 bin logits (training labels are computed at 1/4 resolution too, hence output_stride = 4).

As in the released model, every conv has a bias (BatchNorm follows the ReLU, not the conv, so the bias is not
redundant), BatchNorm has a learned scale and offset, and the upsampling block 8 has no BatchNorm. At full width
with the classification head that is 32,235,385 parameters (32,155,458 with the regression head), the "about
32.2M" of the paper; BatchNorm running statistics (4,992 numbers) are in `batch_stats`, not counted.
"""
from __future__ import annotations

from typing import ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.layers import ColorModel, Dtype, ModuleDef, batch_norm, center_l, check_divisible, scale_width


class BlockSpec(NamedTuple):
  channels: int
  convs: int
  dilation: int
  last_stride: int  # stride of the block's last conv


# Blocks 1-7 of the released network (conv1 ... conv7), each followed by BatchNorm.
ECCV16_BLOCKS = (
    BlockSpec(64, 2, 1, 2),  # -> 1/2
    BlockSpec(128, 2, 1, 2),  # -> 1/4
    BlockSpec(256, 3, 1, 2),  # -> 1/8
    BlockSpec(512, 3, 1, 1),
    BlockSpec(512, 3, 2, 1),  # dilated: receptive field grows, resolution stays 1/8
    BlockSpec(512, 3, 2, 1),
    BlockSpec(512, 3, 1, 1),
)
ECCV16_UP_CHANNELS = 256  # block 8: 4x4 stride-2 transposed conv, then two 3x3 convs, at 1/4 resolution


def _conv(conv: ModuleDef, features: int, kernel: int, stride: int, dilation: int, dtype: Dtype, param_dtype: Dtype,
          name: str) -> nn.Module:
  """`conv` with bias and Caffe-style symmetric padding dilation * (kernel - 1) / 2."""
  pad = dilation * (kernel - 1) // 2
  return conv(features, (kernel, kernel), strides=stride, padding=((pad, pad), (pad, pad)), kernel_dilation=dilation,
              kernel_init=nn.initializers.he_normal(), dtype=dtype, param_dtype=param_dtype, name=name)


class ZhangBlock(nn.Module):
  """`convs` x (3x3 conv + bias -> ReLU), the last with stride `last_stride`, then BatchNorm."""
  features: int
  convs: int
  dilation: int = 1
  last_stride: int = 1
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  bn_axis_name: str | None = None
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    for i in range(self.convs):
      stride = self.last_stride if i == self.convs - 1 else 1
      conv = _conv(self.conv, self.features, 3, stride, self.dilation, self.dtype, self.param_dtype, f"conv{i}")
      x = nn.relu(conv(x))
    return batch_norm(train, self.dtype, self.param_dtype, name="bn", axis_name=self.bn_axis_name)(x)  # (B, H / last_stride, ., features)


class ECCV16(ColorModel):
  """Zhang et al. 2016 colorization network; outputs at 1/4 of the input resolution.

  `width` scales every channel count (1.0 = the paper; tiny values for fast tests). The classification head
  emits `num_bins` logits; the regression head a 1x1 conv to ab / AB_SCALE with tanh, also at 1/4 resolution.
  """
  output_stride: ClassVar[int] = 4
  default_size: ClassVar[int] = 256  # trained on 176 crops, run at 224 or 256; ImageNet evaluations use 256

  width: float = 1.0

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool) -> jax.Array:
    check_divisible(l, 8, "ECCV16")
    x = center_l(l, 100.0, self.dtype)  # (B, H, W, 1) in [-0.5, 0.5]
    for i, spec in enumerate(ECCV16_BLOCKS, start=1):  # (B, H, W, 1) -> (B, H/8, W/8, 512 w)
      x = ZhangBlock(scale_width(spec.channels, self.width), spec.convs, spec.dilation, spec.last_stride,
                     conv=self.conv, name=f"block{i}", **self.layer_kwargs)(x, train=train)
    up = scale_width(ECCV16_UP_CHANNELS, self.width)
    x = self.conv_transpose(up, (4, 4), strides=(2, 2), padding="SAME", kernel_init=nn.initializers.he_normal(),
                            dtype=self.dtype, param_dtype=self.param_dtype, name="block8_deconv")(x)
    x = nn.relu(x)  # (B, H/4, W/4, 256 w)
    for i in range(2):
      x = nn.relu(_conv(self.conv, up, 3, 1, 1, self.dtype, self.param_dtype, f"block8_conv{i}")(x))
    return self.output_head(channels=2, activation="tanh")(x)  # (B, H/4, W/4, num_bins | 2)
