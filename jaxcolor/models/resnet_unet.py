"""ResNet-50 U-Net colorizer (seed 004, "Image Colorization Project 2.0").

Seed 004 uses a pretrained ResNet-50 as the encoder of a simplified U-Net and upsamples with transposed
convolutions and BatchNorm, at 224 x 224, once as regression of ab and once as classification over ab bins.
Here: the ResNet-50 v1 base (`resnet.ResNet50Encoder`) gives features at strides 2, 4, 8, 16, 32; each decoder
level doubles the resolution with a 3x3 stride-2 transposed conv -> BN -> ReLU, concatenates the encoder stage
of that resolution, and mixes with a 3x3 conv -> BN -> ReLU (`layers.decode_with_skips`). The last level (back to full resolution)
concatenates the centred L itself, so edges of the input reach the head directly.

Input: L -> sRGB grey, three channels, ResNet50 "caffe" preprocessing. Pretrained weights:
`pretrained.load_pretrained(model, variables, {"resnet": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"})`.
guided=True: takes color hints (`jaxcolor.hints`), added to every decoder level by a `hint_branch.HintBranch`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax

from jaxcolor import hints as hints_lib
from jaxcolor.models.hint_branch import HintBranch
from jaxcolor.models.keras_weights import encoder_input
from jaxcolor.models.layers import ColorModel, center_l, check_divisible, decode_with_skips
from jaxcolor.models.resnet import RESNET50_STAGES, ResNet50Encoder


class ResNet50UNet(ColorModel):
  """ResNet-50 encoder (to H/32) + transposed-conv U-Net decoder with skips from every encoder stage."""
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 224
  encoder_names: ClassVar[tuple[str, ...]] = ("resnet",)

  encoder_width: float = 1.0  # ResNet channel multiplier; 1 for the ImageNet weights
  encoder_stages: Sequence[int] = RESNET50_STAGES
  decoder_features: Sequence[int] = (256, 128, 64, 32, 16)  # H/16, H/8, H/4, H/2, H
  finetune_encoder_bn: bool = False  # False: encoder BN keeps its running (ImageNet) statistics, also in training
  guided: bool = False  # takes color hints

  def encoders(self) -> dict[str, nn.Module]:
    """Submodule name -> (unbound) encoder, for `pretrained.load_pretrained`."""
    return {"resnet": self._resnet(parent=None)}

  def _resnet(self, **kwargs) -> ResNet50Encoder:
    return ResNet50Encoder(width=self.encoder_width, stage_sizes=self.encoder_stages, dtype=self.dtype,
                           param_dtype=self.param_dtype, conv=self.conv, max_pool=self.max_pool, **kwargs)

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool, hints: jax.Array | None = None) -> jax.Array:
    if hints is not None and not self.guided:
      raise ValueError("ResNet50UNet takes color hints only with guided=True")
    if len(self.decoder_features) != 5:
      raise ValueError(f"ResNet50UNet has 5 decoder levels, got decoder_features={tuple(self.decoder_features)}")
    check_divisible(l, 32, "ResNet50UNet")
    kw = self.layer_kwargs
    feats = self._resnet(name="resnet")(encoder_input(l, ResNet50Encoder.preprocessing, self.dtype),
                                        train=train and self.finetune_encoder_bn)
    stages = [f"conv{s + 2}_block{n}_out" for s, n in enumerate(self.encoder_stages)]
    x = feats[stages[3]]  # (B, H/32, W/32, 2048)
    skips = [feats[stages[2]], feats[stages[1]], feats[stages[0]], feats["conv1_relu"],
             center_l(l, 50.0, self.dtype)]  # H/16, H/8, H/4, H/2, H
    maps = None
    if self.guided:
      maps = HintBranch((16, 8, 4, 2, 1), tuple(self.decoder_features), dtype=self.dtype, param_dtype=self.param_dtype,
                        conv=self.conv, name="hints")(hints if hints is not None else hints_lib.no_hints(l))
    x = decode_with_skips(x, skips, self.decoder_features, train=train, extras=maps, conv=self.conv,
                          conv_transpose=self.conv_transpose, **kw)  # (B, H, W, 16)
    return self.output_head(channels=2, activation="tanh")(x)  # (B, H, W, 2 | num_bins)
