"""The 1x1 classification head and its soft-target cross-entropy, computed together over chunks of pixels.

A classification model ends in a 1x1 projection of C features to Q = 313 bin logits. At 224 x 224 and batch
8 those logits are 502 MB, and the usual path goes through them about eight times (projection, bias,
log-sum-exp, the gathered target logits, the softmax gradient, the scatter of the targets, the two matmul
gradients): on the 2-core CPU 0.93 s of a 6.5 s resnet50_unet train step, bound by memory, not arithmetic.

`cross_entropy` walks the pixels instead, CHUNK_ROWS at a time (spread over the batch): per chunk the logits
x @ W + b, their log-sum-exp and K target logits, and, when differentiated, at once the logit gradient
softmax * sum(w) - w (at the K target bins) contracted into dX, dW and db. The logits stay in cache, exp runs
once per logit, and nothing of size (B, H, W, Q) is allocated; the backward pass only scales the stored
gradients by the incoming cotangent. `python benchmarks/head_loss.py` (BENCHMARKS.md) measures it.

`HeadInput` is what a model's 1x1 classification `layers.OutputHead` returns instead of logits inside
`deferred_head()`, which the train step enters when every loss term takes it (`losses.LossSpec.head_input`)
and the CPU forms are on (`conv_grad.cpu_paths`): the models know nothing of it, and their parameters are the
same. `losses.cross_entropy` accepts a HeadInput or logits. `use_fused` is the rule: on CPU; elsewhere the
logits are formed and the plain loss runs (on a GPU the chunked loop would trade a few passes over fast memory
for hundreds of small kernels).
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxcolor.cpu import conv_grad

Array = jnp.ndarray

CHUNK_ROWS = 1024  # pixels per chunk over the whole batch: (1024, 313) float32 logits are 1.3 MB
MIN_ROWS_PER_IMAGE = 8  # below this (an H*W without a fitting divisor) the loop would be too long: plain path


@flax.struct.dataclass
class HeadInput:
  """The inputs of a 1x1 classification head: features (B, H, W, C), kernel (C, Q), bias (Q,), float32."""
  features: Array
  kernel: Array
  bias: Array

  def logits(self) -> Array:
    """(B, H, W, Q) = features @ kernel + bias (a 1x1 conv, as `conv_grad.pointwise_dot`)."""
    return conv_grad.pointwise_dot(self.features, self.kernel[None, None]) + self.bias


@contextlib.contextmanager
def deferred_head() -> Iterator[None]:
  """Within it, applying a model whose classification head is a 1x1 `layers.OutputHead` returns that head's
  `HeadInput` (its float32 input features and its own kernel and bias) instead of the logits, so the loss can
  compute the projection with the softmax. Does nothing off the CPU forms (`conv_grad.cpu_paths()` False) or
  while a model is being initialized."""
  from jaxcolor.models.layers import OutputHead  # here: the models do not import this module

  def hand_over(next_fun, args, kwargs, context):
    head = context.module
    if (context.method_name != "__call__" or not isinstance(head, OutputHead) or head.head != "classification"
        or head.kernel_size != 1 or head.is_initializing()):
      return next_fun(*args, **kwargs)
    proj = head.variables["params"]["proj"]
    f32 = jnp.float32
    return HeadInput(args[0].astype(f32), proj["kernel"][0, 0].astype(f32), proj["bias"].astype(f32))

  if not conv_grad.cpu_paths():
    yield
    return
  with nn.intercept_methods(hand_over):
    yield


def _target_rows(batch: int) -> int:
  return max(1, CHUNK_ROWS // max(batch, 1))


def rows_per_image(batch: int, pixels: int) -> int:
  """Pixels of each image per chunk: the largest divisor of `pixels` (H*W) up to CHUNK_ROWS / batch."""
  return max(d for d in range(1, min(_target_rows(batch), pixels) + 1) if pixels % d == 0)


def use_fused(head: HeadInput) -> bool:
  """Whether `cross_entropy` runs chunked: on CPU, unless H*W has no divisor near CHUNK_ROWS / batch (fewer
  than MIN_ROWS_PER_IMAGE rows per image would make the loop long and its steps tiny)."""
  b, h, w, _ = head.features.shape
  enough = min(MIN_ROWS_PER_IMAGE, _target_rows(b))
  return conv_grad.cpu_paths() and rows_per_image(b, h * w) >= enough


def _chunk(x, kernel, bias, idx, wts, scale):
  """Loss sum and softmax pieces of one chunk: x (B, r, C), idx / wts (B, r, K), scale (B, r)."""
  b, r, c = x.shape
  z = (lax.dot_general(x.reshape(b * r, c), kernel, (((1,), (0,)), ((), ()))) + bias).reshape(b, r, -1)
  m = jnp.max(z, axis=-1, keepdims=True)
  e = jnp.exp(z - m)  # (B, r, Q)
  s = jnp.sum(e, axis=-1)  # (B, r)
  wsum = jnp.sum(wts, axis=-1)
  picked = jnp.take_along_axis(z, idx, axis=-1)  # (B, r, K)
  loss = jnp.sum(scale * ((m[..., 0] + jnp.log(s)) * wsum - jnp.sum(wts * picked, axis=-1)))
  return loss, e, s, wsum


def _slice(a, i, r):
  return lax.dynamic_slice_in_dim(a, i * r, r, axis=1)


def _loss_only(x, kernel, bias, idx, wts, scale, r):
  def body(i, loss):
    return loss + _chunk(_slice(x, i, r), kernel, bias, _slice(idx, i, r), _slice(wts, i, r), _slice(scale, i, r))[0]
  return lax.fori_loop(0, x.shape[1] // r, body, jnp.zeros((), jnp.float32))


def _loss_and_grads(x, kernel, bias, idx, wts, scale, r):
  b, _, c = x.shape
  batch_ix, row_ix = jnp.arange(b)[:, None, None], jnp.arange(r)[None, :, None]

  def body(i, carry):
    loss, dx, dk, db = carry
    xs, ii, ww, sc = _slice(x, i, r), _slice(idx, i, r), _slice(wts, i, r), _slice(scale, i, r)
    part, e, s, wsum = _chunk(xs, kernel, bias, ii, ww, sc)
    dz = e * (sc * wsum / s)[..., None]  # d loss / d logits: scale * (softmax * sum(w) - w at the targets)
    dz = dz.at[batch_ix, row_ix, ii].add(-ww * sc[..., None])
    dz2 = dz.reshape(b * r, -1)
    dk = dk + lax.dot_general(xs.reshape(b * r, c), dz2, (((0,), (0,)), ((), ())))
    dxs = lax.dot_general(dz2, kernel, (((1,), (1,)), ((), ()))).reshape(b, r, c)
    return loss + part, lax.dynamic_update_slice_in_dim(dx, dxs, i * r, axis=1), dk, db + jnp.sum(dz2, axis=0)

  init = (jnp.zeros((), jnp.float32), jnp.zeros_like(x), jnp.zeros_like(kernel), jnp.zeros_like(bias))
  return lax.fori_loop(0, x.shape[1] // r, body, init)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _fused(x, kernel, bias, idx, wts, scale, r):
  return _loss_only(x, kernel, bias, idx, wts, scale, r)


def _fused_fwd(x, kernel, bias, idx, wts, scale, r):
  loss, dx, dk, db = _loss_and_grads(x, kernel, bias, idx, wts, scale, r)
  return loss, (dx, dk, db)


def _fused_bwd(r, res, g):
  dx, dk, db = res
  return dx * g, dk * g, db * g, None, None, None  # targets and pixel weights get no gradient


_fused.defvjp(_fused_fwd, _fused_bwd)


def cross_entropy(head: HeadInput, indices: Array, weights: Array, pixel_scale: Array) -> Array:
  """sum over pixels of pixel_scale * H(weights at indices, softmax(features @ kernel + bias)), chunked.

  indices / weights (B, H, W, K): the sparse soft targets; pixel_scale (B, H, W): per-pixel factor (mask,
  rebalancing weight and the 1 / count of the mean). Gradients flow to features, kernel and bias only.
  """
  b, h, w, c = head.features.shape
  if indices.shape[:3] != (b, h, w) or weights.shape != indices.shape or pixel_scale.shape != (b, h, w):
    raise ValueError(f"soft targets {indices.shape} / {weights.shape} and pixel scale {pixel_scale.shape} do "
                     f"not match the head's features {head.features.shape}: need (B, H, W, K) and (B, H, W)")
  r = rows_per_image(b, h * w)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  return _fused(f32(head.features).reshape(b, h * w, c), f32(head.kernel), f32(head.bias),
                indices.reshape(b, h * w, -1), f32(weights).reshape(b, h * w, -1),
                f32(pixel_scale).reshape(b, h * w), r)
