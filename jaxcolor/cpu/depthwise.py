"""Depthwise 2-D convolutions as sums of shifted, scaled copies of the input, for XLA:CPU.

XLA:CPU runs `lax.conv_general_dilated` with feature_group_count = channels (a depthwise conv: one k x k filter
per channel) as a generic grouped convolution, far slower than the memory traffic it needs: on 2 cores,
forward 86-247 ms and forward + gradients 270-870 ms for EfficientNet-Lite0's layers at 128 px, batch 32
(`benchmarks/depthwise.py`). Written out, a depthwise conv is k * k elementwise multiply-adds of strided views
of the padded input, which XLA fuses into one loop:

    y[n, i, j, c] = sum_{a, b} xp[n, a + s i, b + s j, c] * w[a, b, 0, c]

and so are its gradients (custom VJP): the input gradient is the same sum over the zero-inserted (stride s)
and padded output gradient with the flipped kernel, and the kernel gradient is k * k reductions of
xp-view * g over batch and pixels. Values equal the lax conv's to float32 rounding (tests/test_depthwise.py
against a float64 reference). `conv_grad.Conv` routes depthwise convs here when `conv_grad.cpu_paths()`.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

Pads = tuple[tuple[int, int], tuple[int, int]]


def _views(xp: jax.Array, k: tuple[int, int], strides: tuple[int, int], out_hw: tuple[int, int]):
  """The kh * kw strided views of padded xp (N, Hp, Wp, C), each (N, Ho, Wo, C), tap-major (a, b)."""
  (kh, kw), (sh, sw), (ho, wo) = k, strides, out_hw
  n, _, _, c = xp.shape
  for a in range(kh):
    for b in range(kw):
      yield a, b, lax.slice(xp, (0, a, b, 0), (n, a + (ho - 1) * sh + 1, b + (wo - 1) * sw + 1, c), (1, sh, sw, 1))


def _shifted_sum(xp: jax.Array, w: jax.Array, strides: tuple[int, int], out_hw: tuple[int, int]) -> jax.Array:
  """sum_{a, b} view_ab(xp) * w[a, b, 0] in float32, (N, Ho, Wo, C)."""
  acc = None
  for a, b, view in _views(xp, w.shape[:2], strides, out_hw):
    term = view.astype(jnp.float32) * w[a, b, 0].astype(jnp.float32)
    acc = term if acc is None else acc + term
  return acc


def _out_hw(x_shape, w_shape, strides, pads: Pads) -> tuple[int, int]:
  return tuple((size + lo + hi - k) // s + 1
               for size, k, s, (lo, hi) in zip(x_shape[1:3], w_shape[:2], strides, pads))  # type: ignore


CHUNK_BYTES = 768 * 2**10  # output-gradient bytes per chunk of the kernel gradient (in the L2 cache of the CPU)


def _chunk(n: int, bytes_per_image: int) -> int:
  """Images per chunk of the kernel gradient: the largest divisor of the batch n within CHUNK_BYTES (at least 1)."""
  return max(m for m in range(1, n + 1) if n % m == 0 and (m == 1 or m * bytes_per_image <= CHUNK_BYTES))


def _pad(x: jax.Array, pads: Pads) -> jax.Array:
  return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise(x, w, strides, pads):
  return _shifted_sum(_pad(x, pads), w, strides, _out_hw(x.shape, w.shape, strides, pads)).astype(x.dtype)


def _depthwise_fwd(x, w, strides, pads):
  return _depthwise(x, w, strides, pads), (x, w)


def _depthwise_bwd(strides, pads, res, g):
  x, w = res
  (kh, kw), (sh, sw) = w.shape[:2], strides
  _, h, wd, _ = x.shape
  out_hw = g.shape[1:3]
  # dx[i] = sum_a gd[i + lo - a] w[a], gd: g with s - 1 zeros between pixels; with the kernel flipped this is
  # the forward sum (stride 1) over gd padded by k - 1 - lo before and enough after to cover H.
  gd_pads = []
  for size, k, s, (lo, _), o in zip((h, wd), (kh, kw), (sh, sw), pads, out_hw):
    gd_pads.append((k - 1 - lo, size + lo - ((o - 1) * s + 1), s - 1))
  gd = lax.pad(g, jnp.zeros((), g.dtype), ((0, 0, 0), gd_pads[0], gd_pads[1], (0, 0, 0)))
  dx = _shifted_sum(gd, w[::-1, ::-1], (1, 1), (h, wd)).astype(x.dtype)
  # dw[a, b, 0, c] = sum_{n, i, j} view_ab(xp)[n, i, j, c] * g[n, i, j, c]: k * k reductions, each reading xp and
  # g. Over the whole batch they stream both from memory k * k times; a scan over chunks of a few images keeps a
  # chunk in cache across the taps (2x faster on EfficientNet-Lite0's layers at 128 px).
  n = x.shape[0]
  m = _chunk(n, g[0].size * 4)
  xp = _pad(x, pads)
  xs, gs = xp.reshape(n // m, m, *xp.shape[1:]), g.reshape(n // m, m, *g.shape[1:])

  def add_chunk(acc, chunk):
    xc, gc = chunk
    gc = gc.astype(jnp.float32)
    taps = [jnp.sum(view.astype(jnp.float32) * gc, axis=(0, 1, 2)) for _, _, view in _views(xc, (kh, kw), strides, out_hw)]
    return acc + jnp.stack(taps), None

  dw = lax.scan(add_chunk, jnp.zeros((kh * kw, x.shape[-1]), jnp.float32), (xs, gs))[0]
  dw = dw.reshape(kh, kw, 1, -1).astype(w.dtype)
  return dx, dw


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


def depthwise_conv(x: jax.Array, w: jax.Array, strides: tuple[int, int], pads: Pads) -> jax.Array:
  """The depthwise conv of NHWC x (N, H, W, C) with HWIO w (kh, kw, 1, C), explicit pads ((lo, hi), (lo, hi)):
  `lax.conv_general_dilated(x, w, strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
  feature_group_count=C)`, computed in float32 and returned in x's dtype."""
  if x.ndim != 4 or w.ndim != 4 or w.shape[2] != 1 or w.shape[3] != x.shape[3]:
    raise ValueError(f"depthwise_conv needs x (N, H, W, C) and w (kh, kw, 1, C), got {x.shape} and {w.shape}")
  return _depthwise(x, w, tuple(strides), tuple(tuple(p) for p in pads))
