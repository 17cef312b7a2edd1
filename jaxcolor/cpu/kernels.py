"""The one place where models get jaxcolor's XLA:CPU kernels: `for_model` gives the fields that swap them in.

Models take their layers as fields with flax's defaults (`conv: ModuleDef = nn.Conv`, `conv_transpose:
ModuleDef = nn.ConvTranspose`, `max_pool = nn.max_pool`, the `ModuleDef` pattern of flax's examples/imagenet)
and know nothing of the CPU. `builders.build_model` passes `for_model(model class)`: while
`conv_grad.cpu_paths()` (the CPU backend, unless `conv_grad.set_cpu_paths(False)`), the fields the class has get
`conv_grad.Conv` (patches dW, phases dX, Winograd, 1x1 convs as matmuls, depthwise shifted sums),
`conv_grad.ConvTranspose` (per-phase transposed convs, 2x2 ones as matmuls) and `max_pool` below; elsewhere
none, and the model runs flax's layers. Each kernel has its flax counterpart's signature and parameters (so
the class names, which name auto-named submodules, are the same too), and itself runs the plain form where
`cpu_paths()` is off when traced.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.cpu import conv_grad


def max_pool(inputs: jax.Array, window_shape: Sequence[int], strides: Sequence[int] | None = None,
             padding: str = "VALID") -> jax.Array:
  """`nn.max_pool` whose 2-D "VALID" pooling on CPU is the elementwise maximum of the window's strided views.

  Same values; the gradient is an elementwise mask (split between tied maxima) instead of XLA's
  select-and-scatter, which XLA:CPU runs far slower, and the views avoid a reduction over short strided window
  axes, which it also runs slowly: forward + gradient of 2x2 pooling at (32, 64, 64, 64) 26 ms, against 55 ms as
  a reshape and a max and 132 ms as nn.max_pool, on 2 cores (`benchmarks/unet_blocks.py`).
  """
  if not conv_grad.cpu_paths() or inputs.ndim != 4 or len(window_shape) != 2 or padding != "VALID":
    return nn.max_pool(inputs, tuple(window_shape), strides=strides, padding=padding)
  (kh, kw), (sh, sw) = window_shape, strides or (1, 1)
  _, h, w, _ = inputs.shape
  ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
  views = [inputs[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
           for i in range(kh) for j in range(kw)]  # kh * kw x (B, ho, wo, C)
  while len(views) > 1:  # a balanced tree of maxima
    views = [jnp.maximum(a, b) for a, b in zip(views[::2], views[1::2])] + views[len(views) - len(views) % 2:]
  return views[0]


KERNELS: dict[str, Any] = {"conv": conv_grad.Conv, "conv_transpose": conv_grad.ConvTranspose, "max_pool": max_pool}


def for_model(model_cls: type[nn.Module]) -> dict[str, Any]:
  """Constructor fields that give a `model_cls` model the CPU kernels: those of KERNELS it has, while
  `conv_grad.cpu_paths()`; {} elsewhere (GPU, TPU, or switched off), where it keeps flax's layers."""
  if not conv_grad.cpu_paths():
    return {}
  fields = {f.name for f in dataclasses.fields(model_cls)}
  return {name: kernel for name, kernel in KERNELS.items() if name in fields}
