"""Full-resolution output: the photo's own L + the predicted ab resized to its size, kept in the sRGB gamut.

The model sees a small (S, S) copy of the photo; its ab prediction is resized bilinearly to the photo's size
(H, W) and merged with the photo's full-resolution lightness, so the output keeps every detail of the input.

Why this is not one `jax.jit` over the whole photo: that compiles once per photo size (seconds each, longer
than the work itself for a folder of scans that all differ), and its temporaries grow with the photo. Here the
resize runs on the host (numpy; the same weights as `jax.image.resize(..., "bilinear")`) and the per-pixel
part runs over flat chunks of a few fixed sizes (`CHUNK_SIZES`), so a whole folder compiles at most
`len(CHUNK_SIZES)` programs and device memory stays bounded by the largest chunk.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colorspace import color

CHUNK_SIZES = tuple(4 ** k for k in range(6, 11))  # pixels per device call: 4096 ... 1,048,576
GAMUT_STEPS = 8  # bisection steps on the chroma factor: it is exact to 1 / 256


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) float32 weights of `jax.image.resize(..., "bilinear")` (antialiased) along one axis.

  Computed in float64: JAX's own float32 coordinates round by up to 3e-5 pixel near index 256.
  """
  if n_in == n_out:
    return np.eye(n_out, dtype=np.float32)
  inv_scale = n_in / n_out
  kernel_scale = max(inv_scale, 1.0)  # widen the triangle when shrinking: low-pass, then sample
  sample = (np.arange(n_out) + 0.5) * inv_scale - 0.5  # (n_out,) input coordinate of each output center
  w = np.maximum(0.0, 1.0 - np.abs(sample[None, :] - np.arange(n_in)[:, None]) / kernel_scale)  # (n_in, n_out)
  total = w.sum(0, keepdims=True)
  w = np.where(np.abs(total) > 1000 * np.finfo(np.float32).eps, w / np.where(total != 0, total, 1), 0)
  w = np.where(((sample >= -0.5) & (sample <= n_in - 0.5))[None, :], w, 0)
  return np.ascontiguousarray(w.T, dtype=np.float32)


def _taps(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(n_out, n_in) banded weights -> (indices, weights), both (n_out, K): each output's K contiguous taps."""
  nonzero = weights != 0
  first = np.argmax(nonzero, axis=1)
  k = int((nonzero.shape[1] - np.argmax(nonzero[:, ::-1], axis=1) - first).max())
  idx = first[:, None] + np.arange(k)
  inside = idx < weights.shape[1]
  idx = np.minimum(idx, weights.shape[1] - 1)
  return idx, np.where(inside, np.take_along_axis(weights, idx, axis=1), 0).astype(np.float32)


class Resizer:
  """ab (S, S', 2) -> rows [r0, r1) of its bilinear resize to (H, W, 2), a band at a time (bounded memory).

  Columns first, on the small array (S, W, 2); then each output row is a weighted sum of K of those rows
  (whole-row copies: 2 for upsampling), which numpy does at memory speed.
  """

  def __init__(self, ab_small: np.ndarray, height: int, width: int):
    ab_small = np.asarray(ab_small, np.float32)
    cols = bilinear_matrix(ab_small.shape[1], width)  # (W, S')
    self.cols = np.ascontiguousarray(np.tensordot(ab_small, cols, axes=(1, 1)).transpose(0, 2, 1))  # (S, W, 2)
    self.row_idx, self.row_w = _taps(bilinear_matrix(ab_small.shape[0], height))  # (H, K) each

  def band(self, r0: int, r1: int) -> np.ndarray:
    """(r1 - r0, W, 2) float32."""
    idx, w = self.row_idx[r0:r1], self.row_w[r0:r1, :, None, None]
    out = self.cols[idx[:, 0]] * w[:, 0]
    for k in range(1, idx.shape[1]):
      out += self.cols[idx[:, k]] * w[:, k]
    return out


def resize_ab(ab_small: np.ndarray, height: int, width: int) -> np.ndarray:
  """ab (S, S', 2) -> (height, width, 2), bilinear: `jax.image.resize(ab, (height, width, 2), "bilinear")`."""
  return Resizer(ab_small, height, width).band(0, height)


@jax.jit
def merge_pixels(rgb: jax.Array, ab: jax.Array) -> jax.Array:
  """uint8 RGB (P, 3) + ab (P, 2) in Lab units -> uint8 RGB (P, 3) with the input's L and (shrunk) ab.

  Out-of-gamut ab would be clipped in RGB, which changes L: the chroma of those pixels is shrunk by a
  per-pixel factor found by bisection (gray, factor 0, is always in gamut), so the output keeps the lightness.
  """
  l = color.rgb_to_l_ab(rgb)[0]  # (P, 1)

  def in_gamut(s):  # (P, 1) bool: is (L, s * ab) inside the sRGB cube (to rounding)?
    linear = color.lab_to_linear_rgb(jnp.concatenate([l, ab * s], -1))
    z_ok = (l + 16.0) / 116.0 - ab[..., 1:] * s / 200.0 >= 0  # else lab_to_linear_rgb clipped Z
    return jnp.all((linear >= -1e-6) & (linear <= 1 + 1e-6), axis=-1, keepdims=True) & z_ok

  lo, hi = jnp.zeros_like(l), jnp.ones_like(l)
  for _ in range(GAMUT_STEPS):
    mid = (lo + hi) / 2
    ok = in_gamut(mid)
    lo, hi = jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)
  scale = jnp.where(in_gamut(jnp.ones_like(l)), 1.0, lo)
  out = color.l_ab_to_rgb(l, ab * scale)
  return jnp.clip(jnp.round(out * 255.0), 0, 255).astype(jnp.uint8)


def chunk_size(num_pixels: int) -> int:
  """The smallest CHUNK_SIZES entry holding `num_pixels`, else the largest."""
  return next((c for c in CHUNK_SIZES if c >= num_pixels), CHUNK_SIZES[-1])


def _merge_flat(rgb: np.ndarray, ab: np.ndarray) -> np.ndarray:
  """uint8 (N, 3) + float32 (N, 2) -> uint8 (N, 3), in padded chunks of one CHUNK_SIZES size."""
  n = rgb.shape[0]
  size = chunk_size(n)
  out = np.empty_like(rgb)
  for i in range(0, n, size):
    m = min(size, n - i)
    pad = ((0, size - m), (0, 0))
    out[i:i + m] = np.asarray(merge_pixels(np.pad(rgb[i:i + m], pad), np.pad(ab[i:i + m], pad)))[:m]
  return out


def merge(rgb: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
  """uint8 RGB (H, W, 3) + predicted ab (S, S', 2) -> uint8 RGB (H, W, 3): the photo's L, the model's ab."""
  rgb = np.asarray(rgb, np.uint8)
  h, w = rgb.shape[:2]
  resizer = Resizer(ab_small, h, w)
  band = max(1, CHUNK_SIZES[-1] // w)  # rows per band: one largest chunk of pixels
  out = np.empty_like(rgb)
  for r0 in range(0, h, band):
    r1 = min(h, r0 + band)
    ab = resizer.band(r0, r1).reshape(-1, 2)
    out[r0:r1] = _merge_flat(rgb[r0:r1].reshape(-1, 3), ab).reshape(r1 - r0, w, 3)
  return out
