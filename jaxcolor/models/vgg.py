"""VGG16 convolutional base (Simonyan & Zisserman 2015), layer for layer `keras.applications.VGG16(include_top=False)`.

Five blocks of 3x3 "same" convs with bias and ReLU, each followed by 2x2 max-pooling: 224 -> 7 x 7 x 512.
Submodules carry the Keras layer names (block1_conv1 ... block5_conv3), so the ImageNet file
`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` loads by name (`keras_weights.load_keras_weights`).
Input: RGB preprocessed in Keras "caffe" mode (`keras_weights.encoder_input(l, "caffe")`).

`width` and `depths` build small variants for tests; the defaults are the Keras network (14,714,688 parameters).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.keras_weights import KerasLayer
from jaxcolor.models.layers import ModuleDef, PoolFn, max_pool_2x2, scale_width

VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_DEPTHS = (2, 2, 3, 3, 3)


class VGG16Encoder(nn.Module):
  """VGG16 without the classifier; returns a dict of feature maps keyed by Keras layer name.

  Keys: "blockB_convK" for the last conv of each block B (full resolution of the block, e.g. block1_conv2 at
  H, block5_conv3 at H/16) and "blockB_pool" for each block output (H / 2^B).
  """
  preprocessing: ClassVar[str] = "caffe"
  keras_match: ClassVar[str] = "name"
  width: float = 1.0
  depths: Sequence[int] = VGG16_DEPTHS
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv: ModuleDef = nn.Conv
  max_pool: PoolFn = nn.max_pool

  def keras_layers(self) -> list[KerasLayer]:
    """The layers with weights, in Keras order, and their place in this module's variables."""
    return [KerasLayer(name, (name,), "conv") for name in self._conv_names()]

  def _conv_names(self) -> list[str]:
    return [f"block{b + 1}_conv{k + 1}" for b, depth in enumerate(self.depths) for k in range(depth)]

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    del train  # no BatchNorm or dropout in VGG16's conv base
    x = x.astype(self.dtype)
    features: dict[str, jax.Array] = {}
    for b, depth in enumerate(self.depths):
      for k in range(depth):
        name = f"block{b + 1}_conv{k + 1}"
        x = self.conv(scale_width(VGG16_WIDTHS[b], self.width), (3, 3), padding="SAME", dtype=self.dtype,
                      param_dtype=self.param_dtype, name=name)(x)
        x = nn.relu(x)
      features[f"block{b + 1}_conv{depth}"] = x
      x = max_pool_2x2(x, self.max_pool)
      features[f"block{b + 1}_pool"] = x
    return features
