"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3): 16 multiplies per 2x2 output tile
instead of 36, so 2.25x fewer FLOPs in the matmuls of the forward pass and of both gradients.

The output is cut into 2x2 tiles; each reads a 4x4 input tile d (tiles overlap by 2). With the transforms of
Lavin & Gray (2016), one output tile of the cross-correlation is  Y = A^T [(G g G^T) * (B^T d B)] A  for each
(input channel, output channel) pair, summed over input channels. Summing over channels turns the 16
elementwise products into 16 independent matmuls (tiles x Cin) @ (Cin x Cout), one per position of the 4x4
transformed tile, which is where the time goes. The input and output transforms are additions only; the
kernel transform has halves. Everything is jnp, so JAX differentiates it: dX and dW are again 16 matmuls of
the same size plus the transposed transforms.

A conv with dilation 2 is four stride-1 convs, one per (row parity, column parity) of the padded input
(polyphase split), done as one Winograd conv over a batch four times larger.

`use_winograd` is the rule for where this beats XLA:CPU's direct convolution, from `benchmarks/conv_grad.py`
on the 2-core CPU (BENCHMARKS.md), forward + both gradients: eccv16's 512 -> 512 convs at 8x22x22 775 ->
559 ms (1.4x), dilated 777 -> 642 ms, 256 -> 256 at 8x44x44 767 -> 618 ms; at 128 channels it only broke
even (819 -> 791 ms) and at 64 it lost (924 -> 1,356 ms: the transforms move 4x the input through memory),
so it needs 256 channels in and out. float32 only: the transforms in bfloat16 would cost accuracy. The
float32 rounding error is that of a direct conv within a small factor (tests/test_winograd.py compares both
against float64).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# F(2x2, 3x3): B^T (4x4 input transform), G (4x3 kernel transform), A^T (2x4 output transform).
_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)
MIN_CHANNELS = 256


def _combine(matrix: np.ndarray, xs: Sequence[jax.Array]) -> list[jax.Array]:
  """[sum_j matrix[i, j] * xs[j] for each row i], skipping zeros and multiplying only by non-units."""
  out = []
  for row in matrix:
    terms = [x if c == 1 else -x if c == -1 else x * c for c, x in zip(row, xs) if c != 0]
    acc = terms[0]
    for t in terms[1:]:
      acc = acc + t
    out.append(acc)
  return out


def _valid_conv(x: jax.Array, w: jax.Array) -> jax.Array:
  """Unpadded 3x3 stride-1 cross-correlation. x: (N, H, W, Cin), w: (3, 3, Cin, Cout) -> (N, H-2, W-2, Cout)."""
  n, h, wd, cin = x.shape
  cout = w.shape[-1]
  ho, wo = h - 2, wd - 2
  th, tw = -(-ho // 2), -(-wo // 2)  # tiles per column / row
  x = jnp.pad(x, ((0, 0), (0, 2 * th + 2 - h), (0, 2 * tw + 2 - wd), (0, 0)))  # whole tiles
  rows = _combine(_BT, [x[:, a:a + 2 * th:2] for a in range(4)])  # 4 x (N, th, W', Cin)
  v = [t for r in rows for t in _combine(_BT, [r[:, :, b:b + 2 * tw:2] for b in range(4)])]
  v = jnp.stack(v).reshape(16, n * th * tw, cin)  # transformed input tiles
  # Transformed kernel G w G^T, as sums of the 3 x 3 taps (an elementwise fusion; an einsum with G
  # transposed the (3, 3, Cin, Cout) kernel and its gradient through memory, 45 ms for 512 x 512 on 2 cores).
  u = jnp.stack([t for r in _combine(_G, list(w)) for t in _combine(_G, list(r))])  # (16, Cin, Cout)
  m = lax.dot_general(v, u, (((2,), (1,)), ((0,), (0,)))).reshape(4, 4, n, th, tw, cout)
  out_rows = _combine(_AT, [m[a] for a in range(4)])  # 2 x (4, N, th, tw, Cout)
  y = jnp.stack([jnp.stack(_combine(_AT, [r[b] for b in range(4)]), axis=3) for r in out_rows], axis=2)
  return y.reshape(n, 2 * th, 2 * tw, cout)[:, :ho, :wo]  # (N, th, 2, tw, 2, Cout) -> pixels


def conv3x3(x: jax.Array, w: jax.Array, padding: Sequence[tuple[int, int]] = ((1, 1), (1, 1)),
            dilation: int = 1) -> jax.Array:
  """`lax.conv_general_dilated(x, w, (1, 1), padding, rhs_dilation=(dilation,) * 2)` in NHWC / HWIO by
  F(2x2, 3x3). x: (N, H, W, Cin) float32, w: (3, 3, Cin, Cout); padding explicit, non-negative."""
  if x.ndim != 4 or w.shape[:2] != (3, 3) or x.shape[-1] != w.shape[2]:
    raise ValueError(f"need NHWC x and a (3, 3, Cin, Cout) kernel with matching Cin, got {x.shape}, {w.shape}")
  if any(p < 0 for pair in padding for p in pair) or dilation < 1:
    raise ValueError(f"need non-negative padding and dilation >= 1, got {padding}, {dilation}")
  x = jnp.pad(x, ((0, 0),) + tuple(tuple(p) for p in padding) + ((0, 0),))
  if dilation == 1:
    return _valid_conv(x, w)
  d = dilation
  n, h, wd, cin = x.shape
  ho, wo = h - 2 * d, wd - 2 * d
  x = jnp.pad(x, ((0, 0), (0, -h % d), (0, -wd % d), (0, 0)))
  hs, ws = x.shape[1] // d, x.shape[2] // d
  phases = x.reshape(n, hs, d, ws, d, cin).transpose(2, 4, 0, 1, 3, 5).reshape(d * d * n, hs, ws, cin)
  y = _valid_conv(phases, w)  # (d*d*N, hs-2, ws-2, Cout)
  y = y.reshape(d, d, n, hs - 2, ws - 2, -1).transpose(2, 3, 0, 4, 1, 5).reshape(n, d * (hs - 2), d * (ws - 2), -1)
  return y[:, :ho, :wo]


def use_winograd(x_shape: Sequence[int], w_shape: Sequence[int], strides: Sequence[int],
                 padding: Sequence[tuple[int, int]], dilation: Sequence[int], dtype) -> bool:
  """Whether `conv3x3` replaces XLA:CPU's convolution: on CPU, float32, 3x3, stride 1, equal dilation 1 or 2,
  non-negative padding, at least MIN_CHANNELS input and output channels (see the module docstring)."""
  if jax.default_backend() != "cpu" or jnp.dtype(dtype) != jnp.float32:
    return False
  kh, kw, cin, cout = w_shape
  return ((kh, kw) == (3, 3) and tuple(strides) == (1, 1) and dilation[0] == dilation[1] in (1, 2)
          and min(p for pair in padding for p in pair) >= 0 and min(cin, cout) >= MIN_CHANNELS
          and len(x_shape) == 4)
