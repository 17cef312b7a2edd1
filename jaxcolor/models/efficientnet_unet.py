"""U-Net colorizer on an ImageNet-pretrained EfficientNet-Lite encoder: a model that recognizes what it colors.

The from-scratch colorizers trained on a CPU never learn what grass or sky is; an encoder trained to name the
1,000 ImageNet classes has (Lite0 names the class of gray Tiny-ImageNet photos top-5 in about 40% of cases,
`benchmarks/efficientnet_lite_imagenet.py`), and its weights install offline (`jaxcolor.models.pretrained`).

Input: L -> the sRGB gray of that lightness (`keras_weights.gray_rgb_from_l`) -> (x - 127) / 128, the encoder's
own scaling. Encoder: `efficientnet_lite.EfficientNetLite` (stage features at strides 2-32 and its 1280-wide
head conv at stride 32). Decoder (`layers.decode_with_skips`): from the head features, four levels each
double the resolution with a transposed conv and mix in the encoder stage of that resolution (strides 16, 8, 4,
2). The output is at half the input resolution (output_stride 2: 313 logits per pixel at full resolution would
cost as much as the encoder on a CPU; ab is smooth and is upsampled onto the photo's own L).

guided=True: the model takes color hints (Zhang et al. 2017; `jaxcolor.hints`) through a `hint_branch.HintBranch`
added to the encoder's stem (so the whole encoder can carry a hint to the object it lies on), its stride-32 head
features and every decoder level (so the hint's exact place reaches the output). At initialization the branch
adds zero: `init_from=accurate` starts from the automatic model, hints then learned.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax

from jaxcolor import hints as hints_lib
from jaxcolor.models import efficientnet_lite
from jaxcolor.models.hint_branch import HintBranch
from jaxcolor.models.keras_weights import gray_rgb_from_l
from jaxcolor.models.layers import ColorModel, check_divisible, decode_with_skips

SKIPS = ("stride16", "stride8", "stride4", "stride2")  # encoder features the decoder levels concatenate


class EfficientNetUNet(ColorModel):
  """EfficientNet-Lite encoder (to H/32) + transposed-conv decoder with skips, output at H/2."""
  output_stride: ClassVar[int] = 2
  default_size: ClassVar[int] = 224
  encoder_names: ClassVar[tuple[str, ...]] = ("efficientnet",)

  variant: str = "lite0"  # EfficientNet-Lite variant (efficientnet_lite.VARIANTS)
  encoder_width: float | None = None  # overrides the variant's width coefficient (tiny test models only)
  encoder_depth: float | None = None  # overrides its depth coefficient
  decoder_features: Sequence[int] = (128, 64, 48, 32)  # H/16, H/8, H/4, H/2
  finetune_encoder_bn: bool = True  # False: encoder BN keeps its running (ImageNet) statistics in training
  drop_connect_rate: float = 0.0  # the encoder's stochastic depth in training
  guided: bool = False  # takes color hints (see the module docstring)

  def encoders(self) -> dict[str, nn.Module]:
    """Submodule name -> (unbound) encoder, for `pretrained.load_pretrained`."""
    return {"efficientnet": self._encoder(parent=None)}

  def _encoder(self, **kwargs) -> efficientnet_lite.EfficientNetLite:
    return efficientnet_lite.EfficientNetLite(self.variant, width=self.encoder_width, depth=self.encoder_depth,
                                              drop_connect_rate=self.drop_connect_rate, dtype=self.dtype,
                                              param_dtype=self.param_dtype, conv=self.conv, **kwargs)

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool, hints: jax.Array | None = None) -> jax.Array:
    """l (B, H, W, 1) in [0, 100]; hints (B, H, W, 3) (guided models only; None: no hints)."""
    if len(self.decoder_features) != len(SKIPS):
      raise ValueError(f"EfficientNetUNet has {len(SKIPS)} decoder levels, got decoder_features="
                       f"{tuple(self.decoder_features)}")
    check_divisible(l, 32, "EfficientNetUNet")
    if hints is not None and not self.guided:
      raise ValueError("EfficientNetUNet takes color hints only with guided=True")
    rgb = efficientnet_lite.preprocess(gray_rgb_from_l(l), self.dtype)  # (B, H, W, 3)
    encoder = self._encoder(name="efficientnet")
    maps = None
    if self.guided:
      head_width = efficientnet_lite.HEAD_FEATURES
      maps = HintBranch((2, 32, 16, 8, 4, 2), (efficientnet_lite.STEM_FEATURES, head_width,
                                               *self.decoder_features), dtype=self.dtype,
                        param_dtype=self.param_dtype, conv=self.conv,
                        name="hints")(hints if hints is not None else hints_lib.no_hints(l))
    feats = encoder(rgb, train=train and self.finetune_encoder_bn, stem_extra=None if maps is None else maps[0])
    head = feats["head"] if maps is None else feats["head"] + maps[1].astype(feats["head"].dtype)
    x = decode_with_skips(head, [feats[k] for k in SKIPS], self.decoder_features, train=train,
                          extras=None if maps is None else maps[2:], conv=self.conv,
                          conv_transpose=self.conv_transpose, **self.layer_kwargs)  # (B, H/2, W/2, f[-1])
    return self.output_head(channels=2, activation="tanh")(x)  # (B, H/2, W/2, 2 | num_bins)
