"""Building blocks and conventions shared by every colorization model.

- `ColorModel`: the fields and class attributes every registered model has (see `jaxcolor.models`).
- `OutputHead`: the prediction head, so that all models agree on what "regression" and "classification" emit.
- `ConvBN` / `UpConvBN`: NHWC conv (or transposed conv) -> BatchNorm -> ReLU, computing in `dtype` (e.g.
  bfloat16) while keeping parameters in `param_dtype` (float32), with the conv module given as `conv`.
- Input helpers: `center_l` (L in [0, 100] -> zero-centred) and `check_divisible`.

Conventions (Zhang et al. 2016, "Colorful Image Colorization", sec. 2 and its released model): regression predicts ab / AB_SCALE
with AB_SCALE = 110, classification predicts logits over the NUM_AB_BINS = 313 in-gamut ab bins.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.task import HEADS  # the one tuple of heads

Dtype = Any
ModuleDef = Any  # a flax module class (or a functools.partial of one), e.g. nn.Conv
PoolFn = Callable[..., jax.Array]  # nn.max_pool's signature

AB_SCALE = 110.0  # regression targets are ab / AB_SCALE, so the sRGB gamut lies inside (-1, 1)
NUM_AB_BINS = 313  # Zhang et al. 2016: in-gamut ab bins of width 10
REGRESSION_ACTIVATIONS = ("tanh", "sigmoid", "linear")

# BatchNorm settings shared by all from-scratch models (PyTorch/Caffe defaults: momentum 0.1 there = 0.9 here).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def check_head(head: str) -> None:
  """Raises ValueError naming the valid heads when `head` is not one of HEADS."""
  if head not in HEADS:
    raise ValueError(f"unknown head {head!r}; choose one of: {', '.join(HEADS)}")


def check_divisible(x: jax.Array, factor: int, model: str) -> None:
  """Raises ValueError when the spatial size of `x` (B, H, W, C) is not a multiple of `factor`.

  Models that downsample by `factor` and upsample back need it for the output to match the input size.
  """
  h, w = x.shape[1], x.shape[2]
  if h % factor or w % factor:
    raise ValueError(f"{model} needs height and width divisible by {factor}, got {h}x{w}")


def center_l(l: jax.Array, scale: float, dtype: Dtype) -> jax.Array:
  """Maps L in [0, 100] to (L - 50) / scale in `dtype`: scale 50 gives [-1, 1], scale 100 (Zhang) [-0.5, 0.5]."""
  return ((l.astype(jnp.float32) - 50.0) / scale).astype(dtype)


def scale_width(channels: int, width: float) -> int:
  """Channels of a layer under a width multiplier, at least 1 (tiny test variants use e.g. width=1/16)."""
  return max(1, int(round(channels * width)))


def batch_norm(train: bool, dtype: Dtype, param_dtype: Dtype, name: str | None = None,
               axis_name: str | None = None) -> nn.BatchNorm:
  """BatchNorm over the channel axis; batch statistics when training, running averages otherwise.

  `axis_name`: the pmap axis to average batch statistics over, so a pmapped step normalizes with the
  statistics of the global batch exactly like a jitted one (None under jit, where the batch is global).
  """
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                      dtype=dtype, param_dtype=param_dtype, name=name, axis_name=axis_name)


def max_pool(x: jax.Array, window: int, stride: int, pool: PoolFn = nn.max_pool) -> jax.Array:
  """VALID max pooling of (B, H, W, C) over window x window patches every `stride` pixels, by `pool` (a model's
  `max_pool` field: nn.max_pool's signature; `jaxcolor.cpu.kernels.max_pool` on CPU)."""
  _, h, w, _ = x.shape
  if min(h, w) < window:
    raise ValueError(f"max_pool: a {window}x{window} window does not fit a {h}x{w} feature map "
                     f"(input shape {x.shape}); the image is too small for this model")
  return pool(x, (window, window), strides=(stride, stride), padding="VALID")


def max_pool_2x2(x: jax.Array, pool: PoolFn = nn.max_pool) -> jax.Array:
  """2x2 max pooling with stride 2, (B, H, W, C) -> (B, H/2, W/2, C) (an odd last row / column is dropped)."""
  return max_pool(x, 2, 2, pool)


class ConvBN(nn.Module):
  """k x k conv (stride, dilation) -> BatchNorm -> ReLU, NHWC.

  Padding is symmetric, dilation * (k - 1) / 2 per side (as in Caffe/PyTorch), so stride 2 halves an even size.
  The conv has no bias when BatchNorm follows it (the BN offset replaces it; seed 003 sec. 4.1).
  """
  features: int
  kernel_size: int = 3
  strides: int = 1
  dilation: int = 1
  use_bn: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  bn_axis_name: str | None = None
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    pad = self.dilation * (self.kernel_size - 1) // 2
    x = self.conv(self.features, (self.kernel_size, self.kernel_size), strides=self.strides,
                  padding=((pad, pad), (pad, pad)), kernel_dilation=self.dilation, use_bias=not self.use_bn,
                  kernel_init=nn.initializers.he_normal(), dtype=self.dtype, param_dtype=self.param_dtype)(x)
    if self.use_bn:
      x = batch_norm(train, self.dtype, self.param_dtype, axis_name=self.bn_axis_name)(x)
    return nn.relu(x)  # (B, H / strides, W / strides, features)


class UpConvBN(nn.Module):
  """k x k transposed conv with stride 2 (doubles H and W) -> BatchNorm -> ReLU, NHWC. `conv` is the
  transposed conv's module (the model's `conv_transpose`)."""
  features: int
  kernel_size: int = 3
  use_bn: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  bn_axis_name: str | None = None
  conv: ModuleDef = nn.ConvTranspose

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = self.conv(self.features, (self.kernel_size, self.kernel_size), strides=(2, 2), padding="SAME",
                  use_bias=not self.use_bn, kernel_init=nn.initializers.he_normal(), dtype=self.dtype,
                  param_dtype=self.param_dtype)(x)
    if self.use_bn:
      x = batch_norm(train, self.dtype, self.param_dtype, axis_name=self.bn_axis_name)(x)
    return nn.relu(x)  # (B, 2H, 2W, features)


def decode_with_skips(x: jax.Array, skips: list[jax.Array], features: Sequence[int], *, train: bool,
                      extras: Sequence[jax.Array] | None = None, conv: ModuleDef = nn.Conv,
                      conv_transpose: ModuleDef = nn.ConvTranspose, **layer_kwargs: Any) -> jax.Array:
  """The U-Net decoder over a pretrained encoder's stages, in the calling module's scope: per level, a 3x3
  stride-2 transposed conv (`conv_transpose`) -> BN -> ReLU ("up{i}") doubles the resolution, the encoder
  feature of that resolution (skips[i]) is concatenated, and a 3x3 conv (`conv`) -> BN -> ReLU ("mix{i}") mixes
  them.
  extras: per level, a map (B, 2h, 2w, f) added to the upsampled features before the mix (color hints,
  `hint_branch.HintBranch`). x: (B, h, w, C) -> (B, h * 2^n, w * 2^n, features[-1]) for n = len(features) levels."""
  if len(skips) != len(features) or (extras is not None and len(extras) != len(features)):
    raise ValueError(f"{len(features)} decoder levels need as many skips (and extras), got {len(skips)}")
  for i, (f, skip) in enumerate(zip(features, skips)):
    x = UpConvBN(f, name=f"up{i}", conv=conv_transpose, **layer_kwargs)(x, train=train)  # (B, 2h, 2w, f)
    if extras is not None:
      x = x + extras[i].astype(x.dtype)
    x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
    x = ConvBN(f, name=f"mix{i}", conv=conv, **layer_kwargs)(x, train=train)
  return x


class OutputHead(nn.Module):
  """Final projection shared by all models; what it emits is fixed by `head`.

  - "regression": `channels` outputs (2 = ab / AB_SCALE, 3 = RGB), squashed by `activation` ("tanh" for ab,
    "sigmoid" for RGB in [0, 1], or "linear"). Its projection starts at zero, so an untrained model predicts
    the grayscale baseline (ab = 0) rather than random colors, and training only ever adds color.
  - "classification": `num_bins` logits over the quantized ab bins (softmax and decoding live in the losses).

  The projection is small next to the network body, so it runs in float32 whatever the model's compute dtype:
  outputs and logits are always float32, which keeps softmax / annealed-mean decoding precise under bfloat16.
  (The train step may hand a 1x1 classification head's input to the loss instead: `head_loss.deferred_head`.)
  """
  head: str = "regression"
  num_bins: int = NUM_AB_BINS
  channels: int = 2
  activation: str = "tanh"
  kernel_size: int = 1
  param_dtype: Dtype = jnp.float32
  conv: ModuleDef = nn.Conv

  def __post_init__(self) -> None:
    check_head(self.head)
    if self.activation not in REGRESSION_ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; choose one of: {', '.join(REGRESSION_ACTIVATIONS)}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    classify = self.head == "classification"
    pad = (self.kernel_size - 1) // 2
    # Regression starts from the grayscale baseline (ab = 0, or mid-gray RGB): a random projection would emit
    # ab noise of std 30-50 (colorfulness 74-174 on photos whose truth is 41), which L2 must first unlearn.
    init = nn.initializers.lecun_normal() if classify else nn.initializers.zeros_init()
    y = self.conv(self.num_bins if classify else self.channels, (self.kernel_size, self.kernel_size),
                  padding=((pad, pad), (pad, pad)), kernel_init=init, dtype=jnp.float32,
                  param_dtype=self.param_dtype, name="proj")(x.astype(jnp.float32))  # (B, H, W, Q or C)
    if classify or self.activation == "linear":
      return y
    return jnp.tanh(y) if self.activation == "tanh" else nn.sigmoid(y)


class ColorModel(nn.Module):
  """Fields and class attributes every colorization model shares (the contract in `jaxcolor.models`).

  Subclasses implement `__call__(self, l, *, train)` (hint-taking models: `__call__(self, l, *, train,
  hints=None)`, see `takes_hints`) with l of shape (B, H, W, 1) in [0, 100] and return
  float32 of shape (B, H / output_stride, W / output_stride, 2, 3 or num_bins): what `output_head()` returns.

  Layers come from the fields `conv`, `conv_transpose` and `max_pool` (flax's by default), which the model
  hands to its submodules: `builders.build_model` sets them to jaxcolor's XLA:CPU kernels on CPU
  (`jaxcolor.cpu.kernels`), so a model that builds its layers from them runs those there too.
  """
  output_stride: ClassVar[int] = 1  # input size / output size
  default_size: ClassVar[int] = 256  # square input side the model is meant to run at

  head: str = "regression"
  num_bins: int = NUM_AB_BINS
  dtype: Dtype = jnp.float32  # compute dtype of the body
  param_dtype: Dtype = jnp.float32
  bn_axis_name: str | None = None  # pmap axis for global BatchNorm statistics (see `batch_norm`)
  conv: ModuleDef = nn.Conv  # module of every conv (depthwise too)
  conv_transpose: ModuleDef = nn.ConvTranspose  # module of every transposed conv
  max_pool: PoolFn = nn.max_pool  # max pooling, nn.max_pool's signature (see `layers.max_pool`)

  def __post_init__(self) -> None:
    check_head(self.head)  # fail at construction, not at the first init
    super().__post_init__()

  @property
  def takes_hints(self) -> bool:
    """Whether `__call__` takes color hints (`hints=` (B, H, W, 3), `jaxcolor.hints`): models with a `guided`
    field take them when it is set (`hint_branch`)."""
    return bool(getattr(self, "guided", False))

  @property
  def layer_kwargs(self) -> dict[str, Any]:
    """dtype, param_dtype and bn_axis_name, the settings every ConvBN / UpConvBN of the model shares."""
    return dict(dtype=self.dtype, param_dtype=self.param_dtype, bn_axis_name=self.bn_axis_name)

  def output_head(self, **kwargs: Any) -> OutputHead:
    """The model's OutputHead (named "head") with its head / num_bins / param_dtype / conv; `kwargs` set
    channels, ..."""
    return OutputHead(head=self.head, num_bins=self.num_bins, param_dtype=self.param_dtype, conv=self.conv,
                      name="head", **kwargs)
