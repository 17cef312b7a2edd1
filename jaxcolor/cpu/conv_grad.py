"""Convolutions whose gradients are cheap on XLA:CPU: a patches (im2col) kernel gradient for convs over few
input channels, and transposed convs (also the input gradient of strided convs) as per-phase convs.

* `conv2d` has the forward semantics of `lax.conv_general_dilated(x, w, strides, padding,
  rhs_dilation=dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"))` and a custom VJP. dX is XLA's usual
  transposed convolution, or for strided convs (`use_phases_dx`) the same `conv_transpose` by phases as below
  (eccv16's 3x3 stride-2 dX: 188 / 86 / 57 ms -> 83 / 41 / 39 ms). dW is XLA's, or patches^T @ dY, where
  patches, shape (N*H'*W', kh*kw*Cin), are the kh*kw strided, dilated windows of the padded input,
  concatenated tap-major (row a, column b, then channel), so the (kh*kw*Cin, Cout) product reshapes directly
  to HWIO. The product accumulates in float32 (also for bfloat16 inputs). The patch matrix is kh*kw times
  the input, so dW runs over chunks of the batch whose patch matrix has at most `max_patch_bytes` (default
  64 MiB; at least one image per chunk), summed in float32.
* `use_patches_dw` is the rule, from `benchmarks/conv_grad.py` on the 2-core CPU, for where that dW beats
  XLA's: only the first convs of a network, whose patches are short (1 or 3 input channels). The issue that
  asked for this measured XLA's kernel gradients at 8-22 GFLOP/s; most of that was YNNPACK's convolutions,
  which `jaxcolor.cpu.compiler` now keeps out, after which XLA's own dW runs at 85-160 GFLOP/s on eccv16's layers.
* `conv_transpose` computes a strided transposed conv on CPU as one stride-1 conv per output phase (the
  sub-pixel decomposition): XLA's conv over the zero-inserted input spends 4x the FLOPs of a 4x4 stride-2
  kernel on zeros, and its kernel gradient was 11.5 s against 0.26 s for the phases (forward + both
  gradients) for eccv16's 512 -> 256 upsampling at batch 8.

* Unpadded 1x1 convs (heads, ResNet's bottlenecks and stride-2 shortcuts) run as a 2-D matmul over the
  flattened pixels (`use_pointwise_dot`), whose kernel gradient is a matmul contracting the pixel axis instead of
  XLA:CPU's convolution over the transposed input. The per-phase convs of `conv_transpose` take the same rules.

`Conv` and `ConvTranspose` are the flax modules (subclasses of `flax.linen.Conv` / `ConvTranspose`: same fields,
parameters and class names) built on these, which `jaxcolor.cpu.kernels` gives models on CPU; `Conv` also sends
wide 3x3 stride-1 float32 convs to `jaxcolor.cpu.winograd` (fewer FLOPs in all three passes) and depthwise ones to
`jaxcolor.cpu.depthwise`. Where `cpu_paths()` is off they are plain XLA convolutions.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcolor.cpu import depthwise, winograd

_DIMS = ("NHWC", "HWIO", "NHWC")
DEFAULT_MAX_PATCH_BYTES = 64 * 2**20


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
  if isinstance(v, (int, np.integer)):
    return (int(v), int(v))
  v = tuple(int(i) for i in v)
  if len(v) != 2:
    raise ValueError(f"expected an int or 2 ints, got {v}")
  return v  # type: ignore[return-value]


def _explicit_padding(padding, x_shape, w_shape, strides, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
  """'SAME' / 'VALID' / ((lo, hi), (lo, hi)) -> explicit ((lo, hi), (lo, hi)) as lax would use."""
  if isinstance(padding, str):
    dilated = [(k - 1) * d + 1 for k, d in zip(w_shape[:2], dilation)]
    pads = lax.padtype_to_pads(x_shape[1:3], dilated, strides, padding)
  else:
    pads = padding
  pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  if len(pads) != 2:
    raise ValueError(f"expected 2 spatial padding pairs, got {padding}")
  return pads  # type: ignore[return-value]


def _plain_conv(x, w, strides, padding, dilation, precision):
  return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=_DIMS,
                                  precision=precision)


def patches_dw(x, g, kernel_hw, strides, padding, dilation, precision=None,
               max_patch_bytes: int = DEFAULT_MAX_PATCH_BYTES):
  """dW (kh, kw, Cin, Cout) in float32 of the NHWC/HWIO conv, from input x and output gradient g.

  `padding` explicit ((lo, hi), (lo, hi)). Chunks over the batch so each chunk's patch matrix
  (n*H'*W', kh*kw*Cin) has at most max_patch_bytes (at least one image).
  """
  kh, kw = kernel_hw
  (sh, sw), (dh, dw) = strides, dilation
  n, _, _, c = x.shape
  _, ho, wo, o = g.shape
  xp = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), padding[0] + (0,), padding[1] + (0,), (0, 0, 0)))
  per_image = ho * wo * kh * kw * c * x.dtype.itemsize
  chunk = int(max(1, min(n, max_patch_bytes // max(per_image, 1))))
  acc = jnp.zeros((kh * kw * c, o), jnp.float32)
  for start in range(0, n, chunk):
    stop = min(n, start + chunk)
    taps = []
    for a in range(kh):
      for b in range(kw):
        r0, c0 = a * dh, b * dw
        taps.append(lax.slice(xp, (start, r0, c0, 0), (stop, r0 + (ho - 1) * sh + 1, c0 + (wo - 1) * sw + 1, c),
                              (1, sh, sw, 1)))
    patches = jnp.concatenate(taps, axis=-1).reshape(-1, kh * kw * c)  # (rows, (a, b, cin))
    gc = lax.slice_in_dim(g, start, stop, axis=0).reshape(-1, o)
    acc = acc + lax.dot_general(patches, gc, (((0,), (0,)), ((), ())), precision=precision,
                                preferred_element_type=jnp.float32)
  return acc.reshape(kh, kw, c, o)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6, 7, 8))
def _conv2d(x, w, strides, padding, dilation, precision, max_patch_bytes, dw_patches, dx_phases):
  return _plain_conv(x, w, strides, padding, dilation, precision)


def _conv2d_fwd(x, w, strides, padding, dilation, precision, max_patch_bytes, dw_patches, dx_phases):
  return _plain_conv(x, w, strides, padding, dilation, precision), (x, w)


def _conv2d_bwd(strides, padding, dilation, precision, max_patch_bytes, dw_patches, dx_phases, res, g):
  x, w = res
  conv = functools.partial(_plain_conv, strides=strides, padding=padding, dilation=dilation, precision=precision)
  if dx_phases:
    dx = phases_dx(g, w, x.shape, strides, padding)
  else:
    dx = jax.vjp(lambda x_: conv(x_, w), x)[1](g)[0]
  if dw_patches:
    dw = patches_dw(x, g, w.shape[:2], strides, padding, dilation, precision, max_patch_bytes).astype(w.dtype)
  else:
    dw = jax.vjp(lambda w_: conv(x, w_), w)[1](g)[0]
  return dx, dw


_conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def conv2d(x, w, strides: int | Sequence[int] = 1, padding: str | Sequence[tuple[int, int]] = "SAME",
           dilation: int | Sequence[int] = 1, precision=None, max_patch_bytes: int = DEFAULT_MAX_PATCH_BYTES,
           *, dw: str = "patches", dx: str = "xla"):
  """`lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=NHWC/HWIO/NHWC)`
  whose kernel gradient is patches^T @ dY (dw="patches"; "xla" for XLA's) and whose input gradient is XLA's
  (dx="xla") or, for a strided conv without dilation, per-phase convs (dx="phases"; see `phases_dx`).

  x: (N, H, W, Cin), w: (kh, kw, Cin, Cout), same dtype (float32 or bfloat16); padding 'SAME', 'VALID' or
  explicit ((lo, hi), (lo, hi)). The patches dW accumulates in float32 and is cast to w's dtype.
  """
  if x.ndim != 4 or w.ndim != 4 or x.shape[-1] != w.shape[2]:
    raise ValueError(f"need NHWC x and HWIO w with matching Cin, got {x.shape} and {w.shape}")
  if dw not in ("patches", "xla") or dx not in ("phases", "xla"):
    raise ValueError(f"dw must be 'patches' or 'xla' and dx 'phases' or 'xla', got dw={dw!r}, dx={dx!r}")
  strides, dilation = _pair(strides), _pair(dilation)
  if dx == "phases" and dilation != (1, 1):
    raise ValueError(f"dx='phases' needs dilation 1, got {dilation}")
  pads = _explicit_padding(padding, x.shape, w.shape, strides, dilation)
  return _conv2d(x, w, strides, pads, dilation, precision, int(max_patch_bytes), dw == "patches", dx == "phases")


def phases_dx(g, w, x_shape, strides, padding):
  """Input gradient (N, H, W, Cin) of the undilated NHWC/HWIO conv with explicit `padding`, from the output
  gradient g: a transposed conv of g with the spatially flipped, in/out-swapped kernel, run by
  `conv_transpose` as per-phase convs (XLA's is one conv over the zero-inserted g: s*s times the FLOPs)."""
  kh, kw = w.shape[:2]
  pads = []
  for k, s, (lo, _), size, out in zip((kh, kw), strides, padding, x_shape[1:3], g.shape[1:3]):
    lo_t = k - 1 - lo  # padding of the zero-inserted g that lines the flipped kernel up with x
    pads.append((lo_t, size - ((out - 1) * s + 1) - lo_t + k - 1))
  return conv_transpose(g, jnp.swapaxes(w[::-1, ::-1], 2, 3), strides, tuple(pads))


def use_patches_dw(x_shape: Sequence[int], w_shape: Sequence[int], strides=1, dilation=1) -> bool:
  """Whether `conv2d`'s patches dW beats XLA:CPU's for a conv of NHWC input x_shape and HWIO kernel w_shape.

  From `python benchmarks/conv_grad.py` on the 2-core CPU with jaxcolor's compiler options (table in
  benchmarks/BENCHMARKS.md): XLA's own kernel gradient is 1.3x to 2.9x faster for every conv with 64 or more
  input channels, and 4.2x for ResNet's 7x7 stem over 3 channels; the patches product wins only where a
  patch is short: the 1-channel first convs (eccv16 2.1x, unet 4.8x) and VGG's 3x3 over 3 channels (1.1x).
  So: kernels larger than 1x1 whose patches have at most MAX_PATCH_COLUMNS = kh*kw*Cin entries.
  `strides` and `dilation` do not enter the rule.
  """
  del strides, dilation
  if not cpu_paths():  # measured on XLA:CPU only; GPUs keep cuDNN's dW
    return False
  kh, kw, cin, _ = w_shape
  return kh * kw > 1 and kh * kw * cin <= MAX_PATCH_COLUMNS


def use_phases_dx(w_shape: Sequence[int], strides=1, dilation=1) -> bool:
  """Whether `conv2d` computes dX by `phases_dx`: on CPU, for strided, undilated convs with kernels larger than
  1x1 and at least MIN_PHASES_DX_CHANNELS input channels. XLA's dX spends s*s times the FLOPs on the zeros it
  inserts into the output gradient; `python benchmarks/conv_grad.py` (BENCHMARKS.md): eccv16's 3x3 stride-2
  convs over 64, 128 and 256 channels 188 / 86 / 57 ms -> 83 / 41 / 39 ms; ResNet's 7x7 stem over 3 channels
  85 -> 107 ms (its dX is not needed in training anyway)."""
  if not cpu_paths():
    return False
  kh, kw, cin = w_shape[:3]
  return kh * kw > 1 and cin >= MIN_PHASES_DX_CHANNELS and max(_pair(strides)) > 1 and _pair(dilation) == (1, 1)


def use_pointwise_dot(w_shape: Sequence[int], pads) -> bool:
  """Whether a conv runs as a matmul over pixels (`pointwise_dot`): on CPU, 1x1 kernels without padding, any
  stride. XLA:CPU computes a 1x1 conv's kernel gradient as a convolution over the input transposed to
  (Cin, H, W, N), a full copy of the activations (in ResNet-50 fused with the BatchNorm recomputation: about
  1.1 s of a 7 s resnet50_unet step); the kernel gradient of the 2-D matmul is a matmul contracting the pixel
  axis, with no copy. `python benchmarks/conv_grad.py --only=1x1` (BENCHMARKS.md), ms forward + both
  gradients, 2 cores: the 16 -> 313 head at 8x224x224 634 -> 547, 64 -> 313 at 32x64x64 402 -> 334, ResNet's
  64 -> 256 at 8x56x56 49 -> 41, 256 -> 512 stride 2 106 -> 77; its 14x14 and 7x7 layers 41 -> 43 and
  44 -> 48. The resnet50_unet train step (224 x 8), where the copies also recomputed BatchNorm: 6.97 -> 6.48 s.
  """
  if not cpu_paths():
    return False
  return tuple(w_shape[:2]) == (1, 1) and all(p == 0 for pair in pads for p in pair)


def pointwise_dot(x: jax.Array, w: jax.Array, strides: Sequence[int] = (1, 1), precision=None) -> jax.Array:
  """Unpadded 1x1 conv with `strides`, NHWC x (N, H, W, Cin), HWIO w (1, 1, Cin, Cout) -> (N, H', W', Cout):
  every stride-th pixel, flattened to (N*H'*W', Cin), times the (Cin, Cout) matrix. Both gradients are 2-D
  matmuls (and for strides > 1 a scatter into the input gradient)."""
  sh, sw = _pair(strides)
  xs = x[:, ::sh, ::sw] if (sh, sw) != (1, 1) else x
  n, h, wd, c = xs.shape
  y = lax.dot_general(xs.reshape(n * h * wd, c), w[0, 0], (((1,), (0,)), ((), ())), precision=precision)
  return y.reshape(n, h, wd, w.shape[-1])


MIN_PHASES_DX_CHANNELS = 64
MAX_PATCH_COLUMNS = 32  # 3x3 over 3 channels (27) still won; 7x7 over 3 (147) and 3x3 over 64 (576) lost
_CPU_PATHS = [True]


def cpu_paths() -> bool:
  """Whether jaxcolor's XLA:CPU forms run: on the CPU backend unless `set_cpu_paths(False)`. The one switch for
  every CPU form: read when a model is built (`kernels.for_model`: the CPU layers for its fields) and when the
  kernels and the fused head + loss (`head_loss`) are traced. Elsewhere (GPU, TPU, or switched off) models run
  the plain Flax / XLA operations."""
  return _CPU_PATHS[0] and jax.default_backend() == "cpu"


def set_cpu_paths(enabled: bool) -> bool:
  """Turns the CPU forms on or off process-wide (for tests and before/after benchmarks) and returns the
  previous setting; models keep the layers they were built with, traced functions the forms they were
  compiled with."""
  previous, _CPU_PATHS[0] = _CPU_PATHS[0], bool(enabled)
  return previous


def _dispatch_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                   dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
  """`lax.conv_general_dilated` signature; routes 2-D NHWC/HWIO convs the rules pick to `winograd.conv3x3` or
  `conv2d`."""
  plain = functools.partial(lax.conv_general_dilated, lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                            rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                            feature_group_count=feature_group_count, precision=precision, **kwargs)
  if (kwargs or lhs.ndim != 4 or lhs.dtype != rhs.dtype or any(d != 1 for d in (lhs_dilation or (1, 1)))
      or feature_group_count not in (1, lhs.shape[-1])):
    return plain()
  if dimension_numbers is None or (lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
                                   != lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DIMS)):
    return plain()
  strides, dilation = _pair(window_strides), _pair(rhs_dilation or 1)
  if feature_group_count != 1:  # one filter per channel
    if not cpu_paths() or rhs.shape[2:] != (1, lhs.shape[-1]) or dilation != (1, 1):
      return plain()
    return depthwise.depthwise_conv(lhs, rhs, strides, _explicit_padding(padding, lhs.shape, rhs.shape, strides,
                                                                          dilation))
  if cpu_paths():
    pads = _explicit_padding(padding, lhs.shape, rhs.shape, strides, dilation)
    if winograd.use_winograd(lhs.shape, rhs.shape, strides, pads, dilation, lhs.dtype):
      return winograd.conv3x3(lhs, rhs, pads, dilation[0])
    if use_pointwise_dot(rhs.shape, pads):
      return pointwise_dot(lhs, rhs, strides, precision)
  dw = "patches" if use_patches_dw(lhs.shape, rhs.shape, strides, dilation) else "xla"
  dx = "phases" if use_phases_dx(rhs.shape, strides, dilation) else "xla"
  if dw == dx == "xla":
    return plain()
  return conv2d(lhs, rhs, strides, padding, dilation, precision, dw=dw, dx=dx)


class Conv(nn.Conv):
  """`flax.linen.Conv` (same fields, parameters 'kernel' (kh, kw, Cin, Cout) and 'bias') whose 2-D convs use
  `conv2d` (patches kernel gradient) where `use_patches_dw` says it is faster, `lax.conv_general_dilated`
  elsewhere, and wide 3x3 stride-1 float32 convs to `winograd.conv3x3` (see `winograd.use_winograd`). Forward
  values are those of `flax.linen.Conv` (to float32 rounding where Winograd runs)."""
  conv_general_dilated: Any = _dispatch_conv


def _transpose_pads(k: int, s: int, padding: str) -> tuple[int, int]:
  """Padding of the zero-inserted input that makes a conv equal `lax.conv_transpose(..., padding)`."""
  if padding == "SAME":
    total = k + s - 2
    before = k - 1 if s > k - 1 else -(-total // 2)
  elif padding == "VALID":
    total, before = k + s - 2 + max(k - s, 0), k - 1
  else:
    raise ValueError(f"transposed conv padding must be 'SAME' or 'VALID', got {padding!r}")
  return before, total - before


def _phases(size: int, k: int, s: int, pads: tuple[int, int]) -> tuple[int, int, list[tuple[int, int, int]]]:
  """Per output phase r (outputs r, r + s, ...) of a 1-D transposed conv: (first tap t0, its input offset d0,
  number of taps), taps t0, t0 + s, ... reading inputs m + d0, m + d0 + 1, ... for output m * s + r.

  `pads` (lo, hi) pad the zero-inserted input. Returns (output length, outputs per phase M = ceil(length / s),
  phases); the last M * s - length outputs are extra and get cropped."""
  lo, hi = pads
  out = (size - 1) * s + 1 + lo + hi - k + 1
  phases = []
  for r in range(s):
    t0 = (lo - r) % s
    phases.append((t0, (r + t0 - lo) // s, len(range(t0, k, s))))
  return out, -(-out // s), phases


def conv_transpose(x: jax.Array, w: jax.Array, strides: Sequence[int],
                   padding: str | Sequence[tuple[int, int]] = "SAME") -> jax.Array:
  """`lax.conv_transpose(x, w, strides, padding, dimension_numbers=NHWC/HWIO)` (no kernel flip); padding
  "SAME", "VALID" or explicit ((lo, hi), (lo, hi)) of the zero-inserted input, as lax's.

  On CPU, as sh*sw stride-1 convs, one per output phase, with the taps of the kernel that reach it (the
  sub-pixel decomposition), interleaved by a reshape: no multiplications by inserted zeros (4x fewer FLOPs
  for a 4x4 stride-2 kernel) in the forward pass or either gradient, which are plain conv gradients.
  Elsewhere `lax.conv_transpose`."""
  sh, sw = _pair(strides)
  kh, kw = w.shape[:2]
  n, h, wd, _ = x.shape
  if isinstance(padding, str):
    padding = (_transpose_pads(kh, sh, padding), _transpose_pads(kw, sw, padding))
  if not cpu_paths():
    return lax.conv_transpose(x, w, (sh, sw), tuple(padding), dimension_numbers=_DIMS)
  (out_h, mh, phases_h), (out_w, mw, phases_w) = _phases(h, kh, sh, padding[0]), _phases(wd, kw, sw, padding[1])
  lo_h = max(0, -min(d for _, d, _ in phases_h))
  lo_w = max(0, -min(d for _, d, _ in phases_w))
  hi_h = max(0, max(d + c - 1 + mh - 1 for _, d, c in phases_h) - (h - 1))
  hi_w = max(0, max(d + c - 1 + mw - 1 for _, d, c in phases_w) - (wd - 1))
  xp = jnp.pad(x, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)))
  rows = []
  for th, dh, ch in phases_h:
    cols = []
    for tw, dw, cw in phases_w:
      if ch == 0 or cw == 0:  # a stride larger than the kernel leaves some outputs untouched
        cols.append(jnp.zeros((n, mh, mw, w.shape[-1]), jnp.result_type(x, w)))
        continue
      r0, c0 = dh + lo_h, dw + lo_w  # the window of inputs this phase reads
      xs = lax.slice(xp, (0, r0, c0, 0), (n, r0 + mh + ch - 1, c0 + mw + cw - 1, xp.shape[-1]))
      cols.append(_dispatch_conv(xs, w[th::sh, tw::sw], (1, 1), "VALID", dimension_numbers=_DIMS))
    rows.append(jnp.stack(cols, axis=3))  # (n, mh, mw, sw, Cout)
  y = jnp.stack(rows, axis=2).reshape(n, mh * sh, mw * sw, w.shape[-1])  # (n, mh, sh, mw, sw, C) -> interleaved
  return y[:, :out_h, :out_w]


def deconv2x2(x: jax.Array, w: jax.Array) -> jax.Array:
  """`lax.conv_transpose(x, w, (2, 2), "VALID", dimension_numbers=NHWC/HWIO)` as two matmuls + depth-to-space.

  The 2x2 stride-2 transposed conv does not overlap: input pixel (i, j) alone writes output block
  (2i..2i+1, 2j..2j+1): y[b, 2i + di, 2j + dj] = x[b, i, j] @ w[1 - di, 1 - dj]. Written as (B h w, C) x (C, 2F)
  products, its kernel and input gradients are plain matmuls too, where XLA:CPU runs the generic transposed
  conv's gradients slowly (`benchmarks/unet_blocks.py`)."""
  b, h, wd, c = x.shape
  f = w.shape[-1]
  w = w[::-1, ::-1]
  # One (B h w, C) x (C, 2F) product per output row parity di, its rows (w, dj, F) already in output order,
  # so the interleave is a concatenation of contiguous rows rather than a 6-D transpose of the whole output
  # (forward + gradients at unet's shapes 211 ms against 273 ms for one einsum on 2 cores).
  rows = [(x.reshape(-1, c) @ w[di].transpose(1, 0, 2).reshape(c, 2 * f)).reshape(b, h, 1, wd * 2 * f)
          for di in range(2)]  # (B, h, 1, w 2 F) each
  return jnp.concatenate(rows, axis=2).reshape(b, 2 * h, 2 * wd, f)


class ConvTranspose(nn.ConvTranspose):
  """`flax.linen.ConvTranspose` (same fields and parameters) whose 2-D transposed convs with padding "SAME" or
  "VALID" run as `conv_transpose` (per-phase convs on CPU), and on CPU 2x2 stride-2 "VALID" ones as `deconv2x2`.
  The rest (other padding, kernel dilation, a mask, `transpose_kernel`, 1-D or 3-D) runs as flax's."""

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    size = (self.kernel_size,) if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
    dilated = self.kernel_dilation is not None and np.any(np.asarray(self.kernel_dilation) != 1)
    if (inputs.ndim != 4 or len(size) != 2 or self.padding not in ("SAME", "VALID") or dilated
        or self.mask is not None or self.transpose_kernel or self.preferred_element_type is not None):
      return super().__call__(inputs)
    strides = _pair(self.strides or 1)
    kernel = self.param("kernel", self.kernel_init, (*size, inputs.shape[-1], self.features), self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    x, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    if cpu_paths() and size == strides == (2, 2) and self.padding == "VALID":
      y = deconv2x2(x, kernel)
    else:
      y = conv_transpose(x, kernel, strides, self.padding)
    return y + bias if bias is not None else y
