"""ResNet-50 v1 and v2 convolutional bases, layer for layer `keras.applications.ResNet50` / `ResNet50V2`
(include_top=False).

- ResNet50 (He et al. 2016, Keras/Caffe variant): 7x7/2 conv with bias -> BN -> ReLU -> 3x3/2 max-pool, then
  bottleneck blocks (1x1, 3x3, 1x1 convs with bias, each followed by BN; the stride sits in the first 1x1 conv;
  projection shortcut in the first block of a stage), ReLU after the addition. Input: Keras "caffe" mode.
- ResNet50V2 (He et al. 2016b, pre-activation): 7x7/2 conv with bias -> 3x3/2 max-pool, then blocks that start
  with BN -> ReLU ("preact"), put the stride in the 3x3 conv of the *last* block of a stage (1x1 max-pool
  shortcut), and end with a final BN -> ReLU ("post_bn"). Input: Keras "tf" mode ([-1, 1]).

Both return stage outputs at strides 2, 4 (v1) / 8 (v2), ..., 32. Submodules carry the Keras layer names
(conv1_conv, conv2_block1_1_conv, ..., post_bn), so the ImageNet files load by name. BatchNorm uses the Keras
settings (momentum 0.99, epsilon 1.001e-5). Explicit zero padding reproduces Keras' ZeroPadding2D layers,
including before the max-pool (for v2 the pooled values may be negative, so the zeros matter).

`width` (channel multiplier) and `stage_sizes` build small variants for tests; the defaults are the Keras nets.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.keras_weights import KerasLayer
from jaxcolor.models.layers import ModuleDef, PoolFn, max_pool, scale_width

RESNET50_STAGES = (3, 4, 6, 3)
STAGE_FILTERS = (64, 128, 256, 512)  # bottleneck width; stage outputs have 4x these channels
KERAS_BN_MOMENTUM = 0.99
KERAS_RESNET_BN_EPSILON = 1.001e-5


def _pad(x: jax.Array, p: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


class _ResNetBase(nn.Module):
  width: float = 1.0
  stage_sizes: Sequence[int] = RESNET50_STAGES
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv: ModuleDef = nn.Conv
  max_pool: PoolFn = nn.max_pool

  def _conv(self, features: int, kernel: int, name: str, strides: int = 1, use_bias: bool = True,
            padding: str = "VALID") -> nn.Module:
    return self.conv(features, (kernel, kernel), strides=(strides, strides), padding=padding, use_bias=use_bias,
                     dtype=self.dtype, param_dtype=self.param_dtype, name=name)

  def _bn(self, name: str, train: bool) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=KERAS_BN_MOMENTUM,
                        epsilon=KERAS_RESNET_BN_EPSILON, dtype=self.dtype, param_dtype=self.param_dtype, name=name)

  def _filters(self, stage: int) -> int:
    return scale_width(STAGE_FILTERS[stage], self.width)


class ResNet50Encoder(_ResNetBase):
  """ResNet-50 v1 base; returns {"conv1_relu" (H/2, 64), "conv2_block3_out" (H/4, 256), "conv3_block4_out" (H/8),
  "conv4_block6_out" (H/16), "conv5_block3_out" (H/32, 2048)} (names follow `stage_sizes`)."""
  preprocessing: ClassVar[str] = "caffe"
  keras_match: ClassVar[str] = "name"

  def keras_layers(self) -> list[KerasLayer]:
    layers = [KerasLayer("conv1_conv", ("conv1_conv",), "conv"), KerasLayer("conv1_bn", ("conv1_bn",), "bn")]
    for s, blocks in enumerate(self.stage_sizes):
      for i in range(blocks):
        prefix = f"conv{s + 2}_block{i + 1}"
        for k in ((0, 1, 2, 3) if i == 0 else (1, 2, 3)):
          layers.append(KerasLayer(f"{prefix}_{k}_conv", (f"{prefix}_{k}_conv",), "conv"))
          layers.append(KerasLayer(f"{prefix}_{k}_bn", (f"{prefix}_{k}_bn",), "bn"))
    return layers

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    x = x.astype(self.dtype)
    x = self._conv(scale_width(64, self.width), 7, "conv1_conv", strides=2)(_pad(x, 3))
    x = nn.relu(self._bn("conv1_bn", train)(x))
    features = {"conv1_relu": x}
    x = max_pool(_pad(x, 1), 3, 2, self.max_pool)
    for s, blocks in enumerate(self.stage_sizes):
      filters = self._filters(s)
      for i in range(blocks):
        prefix = f"conv{s + 2}_block{i + 1}"
        stride = 2 if (i == 0 and s > 0) else 1
        if i == 0:
          shortcut = self._conv(4 * filters, 1, f"{prefix}_0_conv", strides=stride)(x)
          shortcut = self._bn(f"{prefix}_0_bn", train)(shortcut)
        else:
          shortcut = x
        y = self._conv(filters, 1, f"{prefix}_1_conv", strides=stride)(x)
        y = nn.relu(self._bn(f"{prefix}_1_bn", train)(y))
        y = self._conv(filters, 3, f"{prefix}_2_conv", padding="SAME")(y)
        y = nn.relu(self._bn(f"{prefix}_2_bn", train)(y))
        y = self._conv(4 * filters, 1, f"{prefix}_3_conv")(y)
        y = self._bn(f"{prefix}_3_bn", train)(y)
        x = nn.relu(shortcut + y)
      features[f"conv{s + 2}_block{blocks}_out"] = x
    return features


class ResNet50V2Encoder(_ResNetBase):
  """ResNet-50 v2 base; returns {"conv1_conv" (H/2, 64), "conv2_block3_out" (H/8, 256), "conv3_block4_out"
  (H/16, 512), "conv4_block6_out" (H/32, 1024), "conv5_block3_out" (H/32, 2048), "post_relu" (H/32, 2048)}.

  The stage outputs before "post_relu" are pre-activation sums (Keras' `..._out` Add layers).
  """
  preprocessing: ClassVar[str] = "tf"
  keras_match: ClassVar[str] = "name"

  def _strides(self) -> list[int]:
    return [2] * (len(self.stage_sizes) - 1) + [1]  # the last stage keeps its resolution

  def keras_layers(self) -> list[KerasLayer]:
    layers = [KerasLayer("conv1_conv", ("conv1_conv",), "conv")]
    for s, blocks in enumerate(self.stage_sizes):
      for i in range(blocks):
        prefix = f"conv{s + 2}_block{i + 1}"
        layers.append(KerasLayer(f"{prefix}_preact_bn", (f"{prefix}_preact_bn",), "bn"))
        if i == 0:
          layers.append(KerasLayer(f"{prefix}_0_conv", (f"{prefix}_0_conv",), "conv"))
        for k in (1, 2):
          layers.append(KerasLayer(f"{prefix}_{k}_conv", (f"{prefix}_{k}_conv",), "conv_nobias"))
          layers.append(KerasLayer(f"{prefix}_{k}_bn", (f"{prefix}_{k}_bn",), "bn"))
        layers.append(KerasLayer(f"{prefix}_3_conv", (f"{prefix}_3_conv",), "conv"))
    layers.append(KerasLayer("post_bn", ("post_bn",), "bn"))
    return layers

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    x = x.astype(self.dtype)
    x = self._conv(scale_width(64, self.width), 7, "conv1_conv", strides=2)(_pad(x, 3))
    features = {"conv1_conv": x}
    x = max_pool(_pad(x, 1), 3, 2, self.max_pool)
    for s, (blocks, last_stride) in enumerate(zip(self.stage_sizes, self._strides())):
      filters = self._filters(s)
      for i in range(blocks):
        prefix = f"conv{s + 2}_block{i + 1}"
        stride = last_stride if i == blocks - 1 else 1
        preact = nn.relu(self._bn(f"{prefix}_preact_bn", train)(x))
        if i == 0:
          shortcut = self._conv(4 * filters, 1, f"{prefix}_0_conv", strides=stride)(preact)
        elif stride > 1:
          shortcut = x[:, ::stride, ::stride, :]  # Keras: MaxPooling2D(1, strides=stride)
        else:
          shortcut = x
        y = self._conv(filters, 1, f"{prefix}_1_conv", use_bias=False)(preact)
        y = nn.relu(self._bn(f"{prefix}_1_bn", train)(y))
        y = self._conv(filters, 3, f"{prefix}_2_conv", strides=stride, use_bias=False)(_pad(y, 1))
        y = nn.relu(self._bn(f"{prefix}_2_bn", train)(y))
        y = self._conv(4 * filters, 1, f"{prefix}_3_conv")(y)
        x = shortcut + y
      features[f"conv{s + 2}_block{blocks}_out"] = x
    x = nn.relu(self._bn("post_bn", train)(x))
    features["post_relu"] = x
    return features
