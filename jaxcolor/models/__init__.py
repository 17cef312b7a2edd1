"""Model registry: name -> Flax Linen module class.

Every model maps L of shape (batch, H, W, 1), in Lab units [0, 100], to either
- `head="regression"`: ab / AB_SCALE, shape (batch, H', W', 2) (or RGB in [0, 1] for RGB-target models), or
- `head="classification"`: logits over the ab bins, shape (batch, H', W', num_bins),
where H', W' = H / output_stride, W / output_stride (the module's `output_stride` class attribute; 1 for most,
4 for eccv16). Each model normalizes its own input (e.g. (L - 50) / 100, or the pretrained encoder's RGB
preprocessing). All take `dtype` (compute) and `param_dtype` (parameters) and `__call__(l, *, train)`.

To add a model: write the module in its own file and add one line to MODELS below.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn

MODELS: dict[str, type[nn.Module]] = {}

# --- models trained from scratch (cnn, autoencoder, unet, eccv16) ---

# --- models with pretrained-encoder backbones (vgg16_ae, resnet50_unet, koalarization, hybrid_unet) ---


def get_model(name: str, **kwargs: Any) -> nn.Module:
  """Builds the registered model `name` with constructor `kwargs`; unknown names list the choices."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
  return MODELS[name](**kwargs)
