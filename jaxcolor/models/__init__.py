"""Model registry: name -> Flax Linen module class.

Every model maps L of shape (batch, H, W, 1), in Lab units [0, 100], to either
- `head="regression"`: ab / AB_SCALE, shape (batch, H', W', 2) (or RGB in [0, 1] for RGB-target models), or
- `head="classification"`: logits over the ab bins, shape (batch, H', W', num_bins),
where H', W' = H / output_stride, W / output_stride (the module's `output_stride` class attribute; 1 for most,
4 for eccv16). Each model normalizes its own input (e.g. (L - 50) / 100, or the pretrained encoder's RGB
preprocessing). All take `dtype` (compute) and `param_dtype` (parameters), their layers as the fields `conv`,
`conv_transpose` and `max_pool` (flax's by default; `builders.build_model` gives jaxcolor's XLA:CPU kernels on
CPU, `jaxcolor.cpu.kernels`), and `__call__(l, *, train)`.
Models whose `takes_hints` is true (siggraph17; efficientnet_unet and resnet50_unet with guided=True) also take
color hints, `__call__(l, *, train, hints=None)` with hints (batch, H, W, 3) (`jaxcolor.hints`).

To add a model: write the module in its own file, its layers built from those fields, and add one line to
MODELS below.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn

from jaxcolor.models.autoencoder import Autoencoder
from jaxcolor.models.cnn import CNNBaseline
from jaxcolor.models.eccv16 import ECCV16
from jaxcolor.models.efficientnet_unet import EfficientNetUNet
from jaxcolor.models.hybrid import HybridUNet
from jaxcolor.models.koalarization import Koalarization
from jaxcolor.models.resnet_unet import ResNet50UNet
from jaxcolor.models.siggraph17 import SIGGRAPH17
from jaxcolor.models.unet import UNet
from jaxcolor.models.vgg_ae import VGG16AE

MODELS: dict[str, type[nn.Module]] = {
    # trained from scratch
    "cnn_baseline": CNNBaseline,  # seed 003 sec. 4
    "autoencoder": Autoencoder,  # seeds 003 sec. 5 and 001 (target "lab" or "rgb")
    "unet": UNet,  # seed 000
    "eccv16": ECCV16,  # Zhang et al. 2016
    "siggraph17": SIGGRAPH17,  # Zhang et al. 2017, user-guided (takes color hints)
    # pretrained-encoder backbones (local Keras .h5 weights, see models.keras_weights and models.pretrained)
    "vgg16_ae": VGG16AE,  # seed 003 sec. 6.1
    "resnet50_unet": ResNet50UNet,  # seed 004
    "koalarization": Koalarization,  # seed 003 sec. 6.2 (Deep Koalarization)
    "hybrid_unet": HybridUNet,  # seed 002
    # pretrained-encoder colorizers whose ImageNet weights install offline (see models.pretrained)
    "efficientnet_unet": EfficientNetUNet,  # EfficientNet-Lite encoder, the shipped reference colorizers
}


def get_model(name: str, **kwargs: Any) -> nn.Module:
  """Builds the registered model `name` with constructor `kwargs`; unknown names list the choices."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
  return MODELS[name](**kwargs)
