"""PyTorch versions of three jaxcolor models, used only to compare training speed side by side.

This file is for the benchmark comparison and is not part of the `jaxcolor` package. PyTorch is an optional
extra for benchmarks and never a dependency of the package: nothing in `jaxcolor/` imports this file.

The modules follow the Flax models at their default constructor arguments, layer for layer (see
`benchmarks/check_torch_models.py`, which checks parameter counts, output shapes and outputs with copied
weights):

- `UNet`          <- `jaxcolor.models.unet.UNet` (features (64, 128, 256, 512), 64 x 64 inputs)
- `ECCV16`        <- `jaxcolor.models.eccv16.ECCV16` (Zhang et al. 2016, width 1, output at 1/4 resolution)
- `ResNet50UNet`  <- `jaxcolor.models.resnet_unet.ResNet50UNet` (Keras ResNet-50 v1 encoder + U-Net decoder)

Conventions of the Flax models, kept here:
- input: L in [0, 100], here NCHW (B, 1, H, W); each model normalizes it itself ((L - 50) / 50 for unet,
  (L - 50) / 100 for eccv16, the Keras "caffe" grey image for the ResNet-50 encoder);
- output: logits (B, num_outputs, H / s, W / s) for `head="classification"` (313 bins), or
  tanh(projection) for `head="regression"` (num_outputs = 2, ab / 110); s = `output_stride` (4 for eccv16);
- BatchNorm: epsilon 1e-5, Flax momentum 0.9 (PyTorch momentum 0.1) in the models' own layers; the Keras
  ResNet-50 encoder uses epsilon 1.001e-5 and momentum 0.99 (PyTorch 0.01), and by default its BatchNorms
  always normalize with their running statistics, also in training (`finetune_encoder_bn=False`);
- initialization: the Flax initializers (truncated-normal he_normal / lecun_normal over fan-in, zero biases).

Submodules carry the names of the Flax variable paths (e.g. `down0.conv1.Conv_0`, `resnet.conv2_block1_0_conv`,
`head.proj`), so Flax variables map onto them one to one.

Known differences from Flax that do not change forward values:
- PyTorch's BatchNorm updates its running variance with the unbiased batch variance (n / (n - 1) times the
  biased one Flax uses); the normalization itself uses the biased variance in both.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

NUM_AB_BINS = 313
HEADS = ("classification", "regression")

# BatchNorm of the from-scratch layers: Flax momentum 0.9 = PyTorch momentum 0.1 (PyTorch weights the new batch).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.1
# Keras ResNet-50 BatchNorm: Keras/Flax momentum 0.99.
KERAS_BN_EPSILON = 1.001e-5
KERAS_BN_MOMENTUM = 0.01
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
RESNET50_STAGES = (3, 4, 6, 3)
STAGE_FILTERS = (64, 128, 256, 512)

# jax.nn.initializers.variance_scaling(..., "truncated_normal"): the std of a unit normal truncated to (-2, 2).
_TRUNCATED_STD = 0.87962566103423978
HE_SCALE = 2.0  # he_normal
LECUN_SCALE = 1.0  # lecun_normal (Flax's default conv kernel init)


def _flax_init_(weight: torch.Tensor, fan_in: int, scale: float) -> None:
  """Flax variance_scaling(scale, "fan_in", "truncated_normal") in place."""
  std = math.sqrt(scale / fan_in) / _TRUNCATED_STD
  with torch.no_grad():
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


def conv2d(cin: int, cout: int, kernel: int, *, stride: int = 1, dilation: int = 1, padding: int | None = None,
           bias: bool = True, init_scale: float = LECUN_SCALE) -> nn.Conv2d:
  """Conv2d with Flax initialization; padding defaults to the symmetric dilation * (kernel - 1) / 2."""
  if padding is None:
    padding = dilation * (kernel - 1) // 2
  conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
  _flax_init_(conv.weight, cin * kernel * kernel, init_scale)
  if bias:
    nn.init.zeros_(conv.bias)
  return conv


def _lax_transpose_pads(k: int, s: int, padding: str) -> tuple[int, int]:
  """(low, high) padding of the zero-inserted input in `lax.conv_transpose(..., padding)`."""
  if padding == "SAME":
    total = k + s - 2
    low = k - 1 if s > k - 1 else -(-total // 2)
  elif padding == "VALID":
    total, low = k + s - 2 + max(k - s, 0), k - 1
  else:
    raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
  return low, total - low


class LaxConvTranspose2d(nn.ConvTranspose2d):
  """Transposed conv with the output of Flax `ConvTranspose(k, strides=s, padding="SAME" | "VALID")`.

  Both are a conv over the zero-inserted input; Flax pads it (low, high) as `lax.conv_transpose`, PyTorch
  (k - 1 - padding, k - 1 - padding + output_padding). Where low > high (3x3 stride 2 "SAME": (2, 1)) no
  PyTorch padding fits, so it runs with padding 0 and crops the extra trailing rows and columns (the cost of a
  transposed conv is set by its input size, so the crop costs next to nothing). The weight is the Flax kernel
  flipped in space (Flax does not flip; PyTorch's transposed conv does), laid out (Cin, Cout, kh, kw).
  """

  def __init__(self, cin: int, cout: int, kernel: int, stride: int, lax_padding: str, *, bias: bool = True,
               init_scale: float = LECUN_SCALE):
    low, high = _lax_transpose_pads(kernel, stride, lax_padding)
    if low > kernel - 1:
      raise ValueError(f"unsupported transposed conv: k={kernel}, s={stride}, {lax_padding}")
    output_padding = max(high - low, 0)
    if output_padding >= stride:
      raise ValueError(f"unsupported transposed conv: k={kernel}, s={stride}, {lax_padding}")
    super().__init__(cin, cout, kernel, stride=stride, padding=kernel - 1 - low, output_padding=output_padding,
                     bias=bias)
    self.crop_end = max(low - high, 0)  # trailing rows / columns PyTorch computes beyond Flax's output
    _flax_init_(self.weight, cin * kernel * kernel, init_scale)  # Flax fan-in: kh * kw * Cin
    if bias:
      nn.init.zeros_(self.bias)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = super().forward(x)
    if self.crop_end:
      y = y[..., :y.shape[-2] - self.crop_end, :y.shape[-1] - self.crop_end]
    return y


def batch_norm(channels: int) -> nn.BatchNorm2d:
  """BatchNorm of the from-scratch layers (jaxcolor.models.layers.batch_norm)."""
  return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)


class RunningStatsBatchNorm2d(nn.BatchNorm2d):
  """BatchNorm that always normalizes with (and never updates) its running statistics; scale and offset
  still train. Flax: `BatchNorm(use_running_average=True)`, the ResNet50UNet encoder when not fine-tuned."""

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _floating(x: torch.Tensor) -> torch.Tensor:
  """x as is when floating point (float32, or float64 for checks), else as float32."""
  return x if x.is_floating_point() else x.float()


def check_divisible(x: torch.Tensor, factor: int, model: str) -> None:
  h, w = x.shape[-2:]
  if h % factor or w % factor:
    raise ValueError(f"{model} needs height and width divisible by {factor}, got {h}x{w}")


def check_head(head: str) -> None:
  if head not in HEADS:
    raise ValueError(f"unknown head {head!r}; choose one of: {', '.join(HEADS)}")


class ConvBN(nn.Module):
  """k x k conv without bias -> BatchNorm -> ReLU (jaxcolor.models.layers.ConvBN, he_normal)."""

  def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1):
    super().__init__()
    self.Conv_0 = conv2d(cin, cout, kernel, stride=stride, dilation=dilation, bias=False, init_scale=HE_SCALE)
    self.BatchNorm_0 = batch_norm(cout)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return F.relu(self.BatchNorm_0(self.Conv_0(x)))


class UpConvBN(nn.Module):
  """k x k stride-2 "SAME" transposed conv without bias -> BatchNorm -> ReLU (layers.UpConvBN, he_normal)."""

  def __init__(self, cin: int, cout: int, kernel: int = 3):
    super().__init__()
    self.ConvTranspose_0 = LaxConvTranspose2d(cin, cout, kernel, 2, "SAME", bias=False, init_scale=HE_SCALE)
    self.BatchNorm_0 = batch_norm(cout)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return F.relu(self.BatchNorm_0(self.ConvTranspose_0(x)))


class OutputHead(nn.Module):
  """1x1 conv with bias (lecun_normal) to logits, or to tanh(.) for the regression head (layers.OutputHead)."""

  def __init__(self, cin: int, num_outputs: int, head: str):
    super().__init__()
    check_head(head)
    self.regression = head == "regression"
    self.proj = conv2d(cin, num_outputs, 1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = self.proj(x)
    return torch.tanh(y) if self.regression else y


# ---------------------------------------------------------------------------------------------------------------
# U-Net (jaxcolor/models/unet.py)
# ---------------------------------------------------------------------------------------------------------------


class DoubleConv(nn.Module):
  """Two 3x3 ConvBN at one resolution."""

  def __init__(self, cin: int, cout: int):
    super().__init__()
    self.conv0 = ConvBN(cin, cout)
    self.conv1 = ConvBN(cout, cout)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.conv1(self.conv0(x))


class UNet(nn.Module):
  """U-Net: per level two 3x3 ConvBN, 2x2 max-pool down; 2x2 stride-2 transposed conv (with bias) up,
  concatenation [up, skip], two 3x3 ConvBN; input (L - 50) / 50."""
  output_stride = 1
  default_size = 64

  def __init__(self, num_outputs: int = NUM_AB_BINS, head: str = "classification",
               features: Sequence[int] = (64, 128, 256, 512)):
    super().__init__()
    self.features = tuple(features)
    cin = 1
    for i, f in enumerate(self.features[:-1]):
      self.add_module(f"down{i}", DoubleConv(cin, f))
      cin = f
    self.bottleneck = DoubleConv(cin, self.features[-1])
    cin = self.features[-1]
    for i, f in enumerate(reversed(self.features[:-1])):
      self.add_module(f"up{i}_deconv", LaxConvTranspose2d(cin, f, 2, 2, "VALID"))  # nn.ConvTranspose defaults
      self.add_module(f"up{i}", DoubleConv(2 * f, f))
      cin = f
    self.head = OutputHead(cin, num_outputs, head)

  def forward(self, l: torch.Tensor) -> torch.Tensor:
    levels = len(self.features) - 1
    check_divisible(l, 2 ** levels, "UNet")
    x = (_floating(l) - 50.0) / 50.0
    skips = []
    for i in range(levels):
      x = getattr(self, f"down{i}")(x)
      skips.append(x)
      x = F.max_pool2d(x, 2, 2)
    x = self.bottleneck(x)
    for i, skip in enumerate(reversed(skips)):
      x = getattr(self, f"up{i}_deconv")(x)
      x = getattr(self, f"up{i}")(torch.cat([x, skip], dim=1))
    return self.head(x)


# ---------------------------------------------------------------------------------------------------------------
# ECCV16 (jaxcolor/models/eccv16.py)
# ---------------------------------------------------------------------------------------------------------------

# (channels, convs, dilation, stride of the last conv) of blocks 1-7.
ECCV16_BLOCKS = ((64, 2, 1, 2), (128, 2, 1, 2), (256, 3, 1, 2), (512, 3, 1, 1), (512, 3, 2, 1), (512, 3, 2, 1),
                 (512, 3, 1, 1))
ECCV16_UP_CHANNELS = 256


class ZhangBlock(nn.Module):
  """`convs` x (3x3 conv with bias -> ReLU), the last with stride `last_stride`, then BatchNorm."""

  def __init__(self, cin: int, cout: int, convs: int, dilation: int, last_stride: int):
    super().__init__()
    self.convs = convs
    for i in range(convs):
      stride = last_stride if i == convs - 1 else 1
      self.add_module(f"conv{i}", conv2d(cin if i == 0 else cout, cout, 3, stride=stride, dilation=dilation,
                                         init_scale=HE_SCALE))
    self.bn = batch_norm(cout)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    for i in range(self.convs):
      x = F.relu(getattr(self, f"conv{i}")(x))
    return self.bn(x)


class ECCV16(nn.Module):
  """Zhang et al. 2016: blocks 1-7 (to 1/8, dilated 512-wide middle), 4x4 stride-2 transposed conv (bias) ->
  ReLU, two 3x3 conv (bias) -> ReLU, 1x1 head at 1/4 resolution; input (L - 50) / 100."""
  output_stride = 4
  default_size = 256

  def __init__(self, num_outputs: int = NUM_AB_BINS, head: str = "classification"):
    super().__init__()
    cin = 1
    for i, (c, convs, dilation, stride) in enumerate(ECCV16_BLOCKS, start=1):
      self.add_module(f"block{i}", ZhangBlock(cin, c, convs, dilation, stride))
      cin = c
    up = ECCV16_UP_CHANNELS
    self.block8_deconv = LaxConvTranspose2d(cin, up, 4, 2, "SAME", init_scale=HE_SCALE)
    self.block8_conv0 = conv2d(up, up, 3, init_scale=HE_SCALE)
    self.block8_conv1 = conv2d(up, up, 3, init_scale=HE_SCALE)
    self.head = OutputHead(up, num_outputs, head)

  def forward(self, l: torch.Tensor) -> torch.Tensor:
    check_divisible(l, 8, "ECCV16")
    x = (_floating(l) - 50.0) / 100.0
    for i in range(1, len(ECCV16_BLOCKS) + 1):
      x = getattr(self, f"block{i}")(x)
    x = F.relu(self.block8_deconv(x))
    x = F.relu(self.block8_conv0(x))
    x = F.relu(self.block8_conv1(x))
    return self.head(x)


# ---------------------------------------------------------------------------------------------------------------
# ResNet-50 U-Net (jaxcolor/models/resnet_unet.py, jaxcolor/models/resnet.py)
# ---------------------------------------------------------------------------------------------------------------


def gray_rgb_from_l(l: torch.Tensor) -> torch.Tensor:
  """L (B, 1, H, W) in [0, 100] -> the sRGB grey of that lightness, (B, 3, H, W) in [0, 255]."""
  f = (_floating(l).clamp(0.0, 100.0) + 16.0) / 116.0
  y = torch.where(f > 6.0 / 29.0, f ** 3, (f - 16.0 / 116.0) * (3.0 * (6.0 / 29.0) ** 2))
  srgb = torch.where(y > 0.0031308, 1.055 * y.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * y)
  return (255.0 * srgb).expand(-1, 3, -1, -1)


def caffe_preprocess(rgb: torch.Tensor) -> torch.Tensor:
  """Keras "caffe" preprocessing of RGB (B, 3, H, W) in [0, 255]: BGR order minus the ImageNet mean."""
  mean = torch.tensor(CAFFE_MEAN_BGR, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
  return rgb.flip(1) - mean


class ResNet50Encoder(nn.Module):
  """Keras ResNet-50 v1 base: 7x7/2 conv (bias) -> BN -> ReLU -> 3x3/2 max-pool, bottleneck blocks with biased
  convs and the stride in the first 1x1 conv; returns the conv1_relu and stage outputs (strides 2 ... 32)."""

  def __init__(self, stage_sizes: Sequence[int] = RESNET50_STAGES, finetune_bn: bool = False):
    super().__init__()
    self.stage_sizes = tuple(stage_sizes)
    bn_cls = nn.BatchNorm2d if finetune_bn else RunningStatsBatchNorm2d

    def bn(c: int) -> nn.BatchNorm2d:
      return bn_cls(c, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM)

    self.conv1_conv = conv2d(3, 64, 7, stride=2, padding=3)
    self.conv1_bn = bn(64)
    cin = 64
    for s, blocks in enumerate(self.stage_sizes):
      filters = STAGE_FILTERS[s]
      for i in range(blocks):
        p = f"conv{s + 2}_block{i + 1}"
        stride = 2 if (i == 0 and s > 0) else 1
        if i == 0:
          self.add_module(f"{p}_0_conv", conv2d(cin, 4 * filters, 1, stride=stride))
          self.add_module(f"{p}_0_bn", bn(4 * filters))
        self.add_module(f"{p}_1_conv", conv2d(cin, filters, 1, stride=stride))
        self.add_module(f"{p}_1_bn", bn(filters))
        self.add_module(f"{p}_2_conv", conv2d(filters, filters, 3))
        self.add_module(f"{p}_2_bn", bn(filters))
        self.add_module(f"{p}_3_conv", conv2d(filters, 4 * filters, 1))
        self.add_module(f"{p}_3_bn", bn(4 * filters))
        cin = 4 * filters

  def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
    def m(name: str) -> nn.Module:
      return getattr(self, name)

    x = F.relu(self.conv1_bn(self.conv1_conv(x)))
    feats = {"conv1_relu": x}
    # Keras zero-pads by 1 before the max-pool; x >= 0 after the ReLU, so PyTorch's -inf padding is the same.
    x = F.max_pool2d(x, 3, 2, padding=1)
    for s, blocks in enumerate(self.stage_sizes):
      for i in range(blocks):
        p = f"conv{s + 2}_block{i + 1}"
        shortcut = m(f"{p}_0_bn")(m(f"{p}_0_conv")(x)) if i == 0 else x
        y = F.relu(m(f"{p}_1_bn")(m(f"{p}_1_conv")(x)))
        y = F.relu(m(f"{p}_2_bn")(m(f"{p}_2_conv")(y)))
        y = m(f"{p}_3_bn")(m(f"{p}_3_conv")(y))
        x = F.relu(shortcut + y)
      feats[f"conv{s + 2}_block{blocks}_out"] = x
    return feats


class ResNet50UNet(nn.Module):
  """ResNet-50 encoder + decoder of 5 levels: UpConvBN (3x3/2 transposed conv) -> concat [up, skip] -> 3x3
  ConvBN; skips: stages at H/16, H/8, H/4, conv1_relu at H/2, (L - 50) / 50 at H."""
  output_stride = 1
  default_size = 224

  def __init__(self, num_outputs: int = NUM_AB_BINS, head: str = "classification",
               decoder_features: Sequence[int] = (256, 128, 64, 32, 16), finetune_encoder_bn: bool = False):
    super().__init__()
    if len(decoder_features) != 5:
      raise ValueError(f"ResNet50UNet has 5 decoder levels, got {tuple(decoder_features)}")
    self.resnet = ResNet50Encoder(finetune_bn=finetune_encoder_bn)
    self.stage_names = [f"conv{s + 2}_block{n}_out" for s, n in enumerate(RESNET50_STAGES)]
    skip_channels = (4 * STAGE_FILTERS[2], 4 * STAGE_FILTERS[1], 4 * STAGE_FILTERS[0], 64, 1)
    cin = 4 * STAGE_FILTERS[3]
    for i, (f, cs) in enumerate(zip(decoder_features, skip_channels)):
      self.add_module(f"up{i}", UpConvBN(cin, f))
      self.add_module(f"mix{i}", ConvBN(f + cs, f))
      cin = f
    self.head = OutputHead(cin, num_outputs, head)

  def forward(self, l: torch.Tensor) -> torch.Tensor:
    check_divisible(l, 32, "ResNet50UNet")
    feats = self.resnet(caffe_preprocess(gray_rgb_from_l(l)))
    st = self.stage_names
    x = feats[st[3]]
    skips = [feats[st[2]], feats[st[1]], feats[st[0]], feats["conv1_relu"], (_floating(l) - 50.0) / 50.0]
    for i, skip in enumerate(skips):
      x = getattr(self, f"up{i}")(x)
      x = getattr(self, f"mix{i}")(torch.cat([x, skip], dim=1))
    return self.head(x)


# Name -> constructor(num_outputs, head="classification"); 313 outputs for the bins, 2 with head="regression".
TORCH_MODELS: dict[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "eccv16": ECCV16,
    "resnet50_unet": ResNet50UNet,
}


def soft_ce_loss(logits: torch.Tensor, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
  """Cross-entropy with sparse soft targets, the mean over pixels of -sum_k w_k log_softmax(logits)[idx_k].

  logits (B, Q, h, w); idx (B, K, h, w) int64 bin indices; w (B, K, h, w) weights summing to 1 over K.
  jaxcolor's "cross_entropy" loss without rebalancing weights or mask.
  """
  logp = F.log_softmax(logits.float(), dim=1)  # float32 also for bfloat16 logits, as jaxcolor does
  picked = torch.gather(logp, 1, idx)  # (B, K, h, w)
  return -(w.to(logp.dtype) * picked).sum(dim=1).mean()


def param_count(module: nn.Module) -> int:
  """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
  return sum(p.numel() for p in module.parameters() if p.requires_grad)
