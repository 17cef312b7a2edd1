"""VGG16 autoencoder colorizer (seed 003, sec. 6.1 "Vgg16-AE").

The convolutional base of an ImageNet VGG16 encodes the grey image to 7 x 7 x 512 at 224 x 224 (its last max-pool,
"block5_pool"); a decoder of 3x3 conv-BN-ReLU layers, each followed by 2x upsampling (nearest, as Keras'
UpSampling2D), brings it back to 224 x 224, and a 3x3 conv emits ab (tanh) or the bin logits. Seed 003 reports
about 14M weights in all, nearly all of them VGG16's 14.7M.

Input: L -> the sRGB grey of the same lightness, as three channels, in VGG16's "caffe" preprocessing
(`keras_weights.encoder_input`). Pretrained weights: `pretrained.load_pretrained(model, variables,
{"vgg": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"})`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.keras_weights import encoder_input
from jaxcolor.models.layers import ColorModel, ConvBN, check_divisible
from jaxcolor.models.vgg import VGG16_DEPTHS, VGG16Encoder


def upsample2x(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling of (B, H, W, C), as keras.layers.UpSampling2D()."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class VGG16AE(ColorModel):
  """VGG16 encoder (to H/32) + conv/upsample decoder (one level per entry of `decoder_features`, 5 for H/32)."""
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 224
  encoder_names: ClassVar[tuple[str, ...]] = ("vgg",)

  encoder_width: float = 1.0  # VGG16 channel multiplier; 1 for the ImageNet weights
  encoder_depths: Sequence[int] = VGG16_DEPTHS
  decoder_features: Sequence[int] = (256, 128, 64, 32, 16)

  def encoders(self) -> dict[str, nn.Module]:
    """Submodule name -> (unbound) encoder, for `pretrained.load_pretrained`."""
    return {"vgg": self._vgg(parent=None)}

  def _vgg(self, **kwargs) -> VGG16Encoder:
    return VGG16Encoder(width=self.encoder_width, depths=self.encoder_depths, dtype=self.dtype,
                        param_dtype=self.param_dtype, conv=self.conv, max_pool=self.max_pool, **kwargs)

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool) -> jax.Array:
    levels = len(self.encoder_depths)
    if len(self.decoder_features) != levels:
      raise ValueError(f"VGG16AE needs one decoder level per encoder block ({levels}), "
                       f"got decoder_features={tuple(self.decoder_features)}")
    check_divisible(l, 2 ** levels, "VGG16AE")
    features = self._vgg(name="vgg")(encoder_input(l, VGG16Encoder.preprocessing, self.dtype), train=train)
    x = features[f"block{levels}_pool"]  # (B, H/32, W/32, 512): 7 x 7 x 512 at 224
    for i, f in enumerate(self.decoder_features):  # (B, h, w, .) -> (B, 2h, 2w, f)
      x = ConvBN(f, name=f"dec{i}", conv=self.conv, **self.layer_kwargs)(x, train=train)
      x = upsample2x(x)
    return self.output_head(channels=2, activation="tanh", kernel_size=3)(x)  # (B, H, W, 2 | num_bins)
