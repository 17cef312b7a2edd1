"""Inception-ResNet-v2 convolutional base (Szegedy et al. 2017), layer for layer
`keras.applications.InceptionResNetV2(include_top=False)`.

Stem (valid convs and max-pools: 299 -> 35), mixed_5b, 10 x block35 (residual scale 0.17), mixed_6a (-> 17),
20 x block17 (0.1), mixed_7a (-> 8), 10 x block8 (0.2; the last one with scale 1 and no ReLU), conv_7b
(1536 channels). Every conv except the residual "up" projections is conv (no bias) -> BatchNorm without scale
(Keras epsilon 1e-3, momentum 0.99) -> ReLU. Input: Keras "tf" mode ([-1, 1]), at least 75 x 75.

Loading the ImageNet file: most Keras layers here have auto-generated names, so the file is matched by position,
as Keras does. `keras_layers()` lists the layers in Keras' `model.layers` order, which is a topological order:
within a block, layers further from the block's output come first, ties in branch order (for a branch of k
conv-BN-ReLU units ending at the concatenation, unit j's conv is 3 (k - j) layers before it, its BN one fewer).
Flax submodule names are descriptive instead: "mixed_5b_b2_1_conv" is the second unit of branch 2 of mixed_5b;
layers Keras names explicitly keep that name ("block35_1_conv", "conv_7b", "conv_7b_bn").

`width` (channel multiplier) and `blocks` (repeats of block35/17/8) build small variants for tests.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.keras_weights import KerasLayer
from jaxcolor.models.layers import ModuleDef, PoolFn, max_pool, scale_width

IRV2_BLOCKS = (10, 20, 10)
KERAS_BN_MOMENTUM = 0.99
KERAS_BN_EPSILON = 1e-3  # keras.layers.BatchNormalization default


class Unit(NamedTuple):
  """conv (no bias) -> BN (no scale) -> ReLU."""
  filters: int
  kernel: tuple[int, int]
  strides: int = 1
  padding: str = "SAME"


def _u(filters: int, kernel: int | tuple[int, int], strides: int = 1, padding: str = "SAME") -> Unit:
  return Unit(filters, kernel if isinstance(kernel, tuple) else (kernel, kernel), strides, padding)


STEM = (_u(32, 3, 2, "VALID"), _u(32, 3, 1, "VALID"), _u(64, 3), "maxpool", _u(80, 1, 1, "VALID"),
        _u(192, 3, 1, "VALID"), "maxpool")
# Branches of the mixed (reduction / concatenation) and residual blocks, each a sequence of units; "avgpool" /
# "maxpool" are weightless 3x3 poolings (stride 1 "same" average, or stride 2 "valid" max, a branch of its own).
MIXED_5B = ((_u(96, 1),), (_u(48, 1), _u(64, 5)), (_u(64, 1), _u(96, 3), _u(96, 3)), ("avgpool", _u(64, 1)))
MIXED_6A = ((_u(384, 3, 2, "VALID"),), (_u(256, 1), _u(256, 3), _u(384, 3, 2, "VALID")), ("maxpool",))
MIXED_7A = ((_u(256, 1), _u(384, 3, 2, "VALID")), (_u(256, 1), _u(288, 3, 2, "VALID")),
            (_u(256, 1), _u(288, 3), _u(320, 3, 2, "VALID")), ("maxpool",))
BLOCK35 = ((_u(32, 1),), (_u(32, 1), _u(32, 3)), (_u(32, 1), _u(48, 3), _u(64, 3)))
BLOCK17 = ((_u(192, 1),), (_u(128, 1), _u(160, (1, 7)), _u(192, (7, 1))))
BLOCK8 = ((_u(192, 1),), (_u(192, 1), _u(224, (1, 3)), _u(256, (3, 1))))
RESIDUAL_BLOCKS = (("block35", BLOCK35, 0.17), ("block17", BLOCK17, 0.1), ("block8", BLOCK8, 0.2))


def _unit_name(block: str, branch: int, index: int) -> str:
  return f"{block}_b{branch}_{index}"


def _branch_layers_keras_order(block: str, branches: Sequence[Sequence[Any]]) -> list[KerasLayer]:
  """The conv/BN layers of parallel branches in Keras' topological order (see the module docstring)."""
  keyed = []
  for b, branch in enumerate(branches):
    units = [(i, u) for i, u in enumerate(branch) if isinstance(u, Unit)]
    for j, (i, _) in enumerate(units):
      depth = 3 * (len(units) - j)  # layers between this conv and the concatenation (ReLU, BN, conv)
      name = _unit_name(block, b, i)
      keyed.append(((-depth, b, j), KerasLayer(name + "_conv", (name + "_conv",), "conv_nobias")))
      keyed.append(((-(depth - 1), b, j), KerasLayer(name + "_bn", (name + "_bn",), "bn_noscale")))
  return [layer for _, layer in sorted(keyed, key=lambda kv: kv[0])]


class InceptionResNetV2Encoder(nn.Module):
  """Inception-ResNet-v2 base; returns {"mixed_5b" (35 x 35 at 299, 320), "mixed_6a" (17, 1088),
  "mixed_7a" (8, 2080), "conv_7b_ac" (8 x 8 x 1536)} (channels for width 1)."""
  preprocessing: ClassVar[str] = "tf"
  keras_match: ClassVar[str] = "order"
  min_size: ClassVar[int] = 75
  width: float = 1.0
  blocks: Sequence[int] = IRV2_BLOCKS
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  conv: ModuleDef = nn.Conv
  max_pool: PoolFn = nn.max_pool

  def keras_layers(self) -> list[KerasLayer]:
    """The layers with weights in Keras `model.layers` order, and their place in this module's variables."""
    layers = _branch_layers_keras_order("stem", (STEM,))
    layers += _branch_layers_keras_order("mixed_5b", MIXED_5B)
    for kind, branches, _ in RESIDUAL_BLOCKS:
      for idx in range(1, self._repeats(kind) + 1):
        layers += _branch_layers_keras_order(f"{kind}_{idx}", branches)
        layers.append(KerasLayer(f"{kind}_{idx}_conv", (f"{kind}_{idx}_conv",), "conv"))
      reduction = {"block35": ("mixed_6a", MIXED_6A), "block17": ("mixed_7a", MIXED_7A)}.get(kind)
      if reduction:
        layers += _branch_layers_keras_order(*reduction)
    layers += [KerasLayer("conv_7b", ("conv_7b",), "conv_nobias"),
               KerasLayer("conv_7b_bn", ("conv_7b_bn",), "bn_noscale")]
    return layers

  def _repeats(self, kind: str) -> int:
    return dict(zip(("block35", "block17", "block8"), self.blocks))[kind]

  def _unit(self, x: jax.Array, unit: Unit, conv_name: str, bn_name: str, train: bool) -> jax.Array:
    x = self.conv(scale_width(unit.filters, self.width), unit.kernel, strides=(unit.strides, unit.strides),
                  padding=unit.padding, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                  name=conv_name)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=KERAS_BN_MOMENTUM, epsilon=KERAS_BN_EPSILON,
                     use_scale=False, dtype=self.dtype, param_dtype=self.param_dtype, name=bn_name)(x)
    return nn.relu(x)

  def _branch(self, x: jax.Array, branch: Sequence[Any], block: str, b: int, train: bool) -> jax.Array:
    for i, step in enumerate(branch):
      if step == "maxpool":
        x = max_pool(x, 3, 2, self.max_pool)
      elif step == "avgpool":  # Keras/TF "same" average pooling leaves the padding out of the mean
        x = nn.avg_pool(x, (3, 3), strides=(1, 1), padding="SAME", count_include_pad=False)
      else:
        name = _unit_name(block, b, i)
        x = self._unit(x, step, name + "_conv", name + "_bn", train)
    return x

  def _mixed(self, x: jax.Array, branches: Sequence[Sequence[Any]], block: str, train: bool) -> jax.Array:
    return jnp.concatenate([self._branch(x, br, block, b, train) for b, br in enumerate(branches)], axis=-1)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> dict[str, jax.Array]:
    if min(x.shape[1], x.shape[2]) < self.min_size:
      raise ValueError(f"InceptionResNetV2 needs inputs of at least {self.min_size}x{self.min_size}, "
                       f"got {x.shape[1]}x{x.shape[2]}")
    x = self._branch(x.astype(self.dtype), STEM, "stem", 0, train)
    features = {}
    x = features["mixed_5b"] = self._mixed(x, MIXED_5B, "mixed_5b", train)
    for kind, branches, scale in RESIDUAL_BLOCKS:
      repeats = self._repeats(kind)
      for idx in range(1, repeats + 1):
        last = kind == "block8" and idx == repeats
        mixed = self._mixed(x, branches, f"{kind}_{idx}", train)
        up = self.conv(x.shape[-1], (1, 1), dtype=self.dtype, param_dtype=self.param_dtype,
                       name=f"{kind}_{idx}_conv")(mixed)
        x = x + up * (1.0 if last else scale)
        if not last:
          x = nn.relu(x)
      if kind == "block35":
        x = features["mixed_6a"] = self._mixed(x, MIXED_6A, "mixed_6a", train)
      elif kind == "block17":
        x = features["mixed_7a"] = self._mixed(x, MIXED_7A, "mixed_7a", train)
    x = self._unit(x, _u(1536, 1), "conv_7b", "conv_7b_bn", train)
    features["conv_7b_ac"] = x
    return features
