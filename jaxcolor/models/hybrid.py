"""Hybrid VGG16 + ResNet50V2 U-Net colorizer (seed 002, jchen "Image Colorization").

Seed 002 encodes the grey image with two ImageNet encoders, VGG16 and ResNet50V2, joins them at the bottleneck
("a feature-rich bottleneck"), and decodes with a U-Net that upsamples and concatenates intermediate VGG16
layers until the input size; it is trained with L2 loss and progressive resizing (32, 64, 128, 256 px).
Here: bottleneck = concat(VGG16 block5_pool, ResNet50V2 post_relu), both at H/32 -> 1x1 conv-BN-ReLU; five
decoder levels, each a 3x3 stride-2 transposed conv -> BN -> ReLU, concatenation of the VGG16 feature of that
resolution (block5_conv3 at H/16, block4_conv3, block3_conv3, block2_conv2, block1_conv2 at H), and two 3x3
conv-BN-ReLU. Any size divisible by 32 works, so one set of weights serves every stage of progressive resizing.

Input: L -> sRGB grey; VGG16 gets it in "caffe", ResNet50V2 in "tf" preprocessing. Pretrained weights:
`pretrained.load_pretrained(model, variables, {"vgg": ".../vgg16_..._notop.h5",
"resnet": ".../resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"})`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.keras_weights import encoder_input
from jaxcolor.models.layers import ColorModel, ConvBN, UpConvBN, check_divisible
from jaxcolor.models.resnet import RESNET50_STAGES, ResNet50V2Encoder
from jaxcolor.models.vgg import VGG16_DEPTHS, VGG16Encoder


class HybridUNet(ColorModel):
  """VGG16 + ResNet50V2 encoders fused at H/32, U-Net decoder with VGG16 skips; sizes divisible by 32."""
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 256  # the last progressive-resizing stage of seed 002 (32, 64, 128, 256)
  encoder_names: ClassVar[tuple[str, ...]] = ("vgg", "resnet")

  encoder_width: float = 1.0  # channel multiplier of both encoders; 1 for the ImageNet weights
  vgg_depths: Sequence[int] = VGG16_DEPTHS
  resnet_stages: Sequence[int] = RESNET50_STAGES
  bottleneck_features: int = 512
  decoder_features: Sequence[int] = (512, 256, 128, 64, 32)  # H/16, H/8, H/4, H/2, H
  finetune_encoder_bn: bool = False  # False: ResNet50V2's BN keeps its running (ImageNet) statistics

  def encoders(self) -> dict[str, nn.Module]:
    """Submodule name -> (unbound) encoder, for `pretrained.load_pretrained`."""
    return {"vgg": self._vgg(parent=None), "resnet": self._resnet(parent=None)}

  def _vgg(self, **kwargs) -> VGG16Encoder:
    return VGG16Encoder(width=self.encoder_width, depths=self.vgg_depths, dtype=self.dtype,
                        param_dtype=self.param_dtype, conv=self.conv, max_pool=self.max_pool, **kwargs)

  def _resnet(self, **kwargs) -> ResNet50V2Encoder:
    return ResNet50V2Encoder(width=self.encoder_width, stage_sizes=self.resnet_stages, dtype=self.dtype,
                             param_dtype=self.param_dtype, conv=self.conv, max_pool=self.max_pool, **kwargs)

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool) -> jax.Array:
    if len(self.vgg_depths) != 5 or len(self.resnet_stages) != 4 or len(self.decoder_features) != 5:
      raise ValueError("HybridUNet needs 5 VGG blocks, 4 ResNet stages and 5 decoder levels (both encoders "
                       "at H/32)")
    check_divisible(l, 32, "HybridUNet")
    kw = self.layer_kwargs
    vgg = self._vgg(name="vgg")(encoder_input(l, VGG16Encoder.preprocessing, self.dtype), train=train)
    resnet = self._resnet(name="resnet")(encoder_input(l, ResNet50V2Encoder.preprocessing, self.dtype),
                                         train=train and self.finetune_encoder_bn)
    x = jnp.concatenate([vgg["block5_pool"], resnet["post_relu"]], axis=-1)  # (B, H/32, W/32, 512 + 2048)
    x = ConvBN(self.bottleneck_features, kernel_size=1, name="bottleneck", conv=self.conv, **kw)(x, train=train)
    skips = [f"block{b}_conv{self.vgg_depths[b - 1]}" for b in (5, 4, 3, 2, 1)]  # H/16 ... H
    for i, (f, skip) in enumerate(zip(self.decoder_features, skips)):
      x = UpConvBN(f, name=f"up{i}", conv=self.conv_transpose, **kw)(x, train=train)  # (B, 2h, 2w, f)
      x = jnp.concatenate([x, vgg[skip].astype(x.dtype)], axis=-1)
      x = ConvBN(f, name=f"up{i}_conv0", conv=self.conv, **kw)(x, train=train)
      x = ConvBN(f, name=f"up{i}_conv1", conv=self.conv, **kw)(x, train=train)
    return self.output_head(channels=2, activation="tanh")(x)  # (B, H, W, 2 | num_bins)
