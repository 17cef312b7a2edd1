"""Quantized ab space of Zhang et al. (ECCV 2016): bins, sparse soft encoding and decoding, all jnp.

Classification colorizers predict a distribution over Q ab bins per pixel. This module defines the bins
(derived from the sRGB gamut, not read from a shipped table), encodes ground-truth ab as sparse soft targets
(the K nearest bins with Gaussian weights), and decodes logits back to ab (mode, mean, annealed mean).

The in-gamut rule: a grid point c is kept when the axis-aligned square of half-width `step` around it meets
the convex hull of the ab coordinates of all 8-bit sRGB colors. With step 10 over [-110, 110] this yields
exactly Zhang's 313 bins (a in [-90, 100], b in [-110, 100]). The test "square meets hull" is done with
support functions: c is kept unless some direction u separates them, i.e. unless
    u.c - step * (|u_a| + |u_b|) > max_{s in gamut} u.s   for some unit u,
checked on `num_directions` evenly spaced directions (an outer approximation whose error, about
R * (pi / num_directions)^2 / 2 < 1e-4 ab units at the default 2048 directions, is far below the 0.086-unit
margin of the grid point closest to the decision boundary; tests compare against an exact scipy hull).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colorspace import color

Array = jnp.ndarray

DEFAULT_STEP = 10.0
DEFAULT_EXTENT = 110.0
DEFAULT_K = 5
DEFAULT_SIGMA = 5.0
DEFAULT_TEMPERATURE = 0.38


class SoftTarget(NamedTuple):
  """Sparse soft encoding of ab: per pixel, K bin indices (nearest first) and their weights (sum 1)."""
  indices: Array  # (..., K) int32
  weights: Array  # (..., K) float32


@functools.lru_cache(maxsize=4)
def _gamut_surface_ab() -> np.ndarray:
  """ab of every 8-bit sRGB color on the surface of the RGB cube, (N, 2) float32.

  The ab extremes of the cube lie on its surface, so the hull of these points is the hull of all 16.7M colors
  (checked against the full cube when this module was written).
  """
  v = jnp.arange(256, dtype=jnp.uint8)
  g1, g2 = jnp.meshgrid(v, v, indexing="ij")
  faces = []
  for axis in range(3):
    for value in (0, 255):
      cols = [g1, g2]
      cols.insert(axis, jnp.full_like(g1, value))
      faces.append(jnp.stack(cols, -1).reshape(-1, 3))
  rgb = jnp.concatenate(faces)
  return np.asarray(jax.jit(color.rgb_to_lab)(rgb)[:, 1:])


def _directions(num: int) -> jnp.ndarray:
  theta = jnp.arange(num, dtype=jnp.float32) * (2 * jnp.pi / num)
  return jnp.stack([jnp.cos(theta), jnp.sin(theta)], -1)  # (num, 2)


@functools.partial(jax.jit, static_argnames=("num_directions",))
def gamut_support(points: Array, num_directions: int = 2048) -> Array:
  """Support function of the convex hull of `points` (N, 2) on `num_directions` unit directions."""
  u = _directions(num_directions)
  chunks = points.reshape(-1, 4096, 2) if points.shape[0] % 4096 == 0 else points[None]
  return jax.lax.map(lambda p: jnp.max(p @ u.T, axis=0), chunks).max(axis=0)  # (num_directions,)


def grid_centers(step: float = DEFAULT_STEP, extent: float = DEFAULT_EXTENT) -> np.ndarray:
  """All grid points (n * n, 2) of a square ab grid, row-major over (a, b)."""
  n = int(round(2 * extent / step)) + 1
  axis = -extent + step * np.arange(n)
  a, b = np.meshgrid(axis, axis, indexing="ij")
  return np.stack([a.ravel(), b.ravel()], -1).astype(np.float32)


def in_gamut_mask(centers: Array, half_width: float, num_directions: int = 2048) -> Array:
  """True where the square of `half_width` around each center (M, 2) meets the sRGB ab gamut hull."""
  support = gamut_support(jnp.asarray(_pad_points(_gamut_surface_ab())), num_directions)
  u = _directions(num_directions)
  near = jnp.asarray(centers) @ u.T - half_width * jnp.abs(u).sum(-1)  # (M, D): square's nearest reach
  return jnp.all(near <= support[None, :], axis=-1)


def _pad_points(points: np.ndarray) -> np.ndarray:
  """Repeats the first rows so the count is a multiple of the chunk size (a max is unchanged by repeats)."""
  extra = (-points.shape[0]) % 4096
  return np.concatenate([points, points[:extra]]) if extra else points


@dataclasses.dataclass(frozen=True, eq=False)
class ABBins:
  """The in-gamut ab bins of a square grid, with the lookup tables the sparse encoder needs.

  Hashed by identity (`make_bins` caches instances), so it can be a static argument of `jax.jit`.

  Attributes:
    centers: (Q, 2) float32 bin centers in Lab units, row-major over (a, b) grid order.
    step: grid spacing; extent: the grid spans [-extent, extent] on both axes.
    grid_to_bin: (n, n) int32, the bin index of each grid point or -1 where it is out of gamut.
  """
  centers: np.ndarray
  step: float
  extent: float
  grid_to_bin: np.ndarray

  @property
  def num_bins(self) -> int:
    return int(self.centers.shape[0])

  @property
  def grid_size(self) -> int:
    return int(self.grid_to_bin.shape[0])


@functools.lru_cache(maxsize=8)
def make_bins(step: float = DEFAULT_STEP, extent: float = DEFAULT_EXTENT) -> ABBins:
  """In-gamut bins of the grid with spacing `step` over [-extent, extent]^2 (313 with the defaults)."""
  if step <= 0 or extent <= 0:
    raise ValueError(f"ab grid needs step > 0 and extent > 0, got step={step}, extent={extent}")
  grid = grid_centers(step, extent)
  keep = np.asarray(in_gamut_mask(grid, half_width=step))
  n = int(round(2 * extent / step)) + 1
  grid_to_bin = np.full(n * n, -1, np.int32)
  grid_to_bin[keep] = np.arange(int(keep.sum()), dtype=np.int32)
  return ABBins(centers=grid[keep], step=float(step), extent=float(extent),
                grid_to_bin=grid_to_bin.reshape(n, n))


def bins_from_centers(centers: np.ndarray, step: float, extent: float) -> ABBins:
  """Rebuilds an `ABBins` from saved centers (e.g. from a checkpoint), checking they lie on the grid."""
  centers = np.asarray(centers, np.float32)
  n = int(round(2 * extent / step)) + 1
  ij = np.rint((centers + extent) / step).astype(np.int64)
  if np.any(np.abs(ij * step - extent - centers) > 1e-3) or ij.min() < 0 or ij.max() >= n:
    raise ValueError(f"bin centers are not points of the grid step={step}, extent={extent}")
  grid_to_bin = np.full((n, n), -1, np.int32)
  grid_to_bin[ij[:, 0], ij[:, 1]] = np.arange(len(centers), dtype=np.int32)
  if not np.all(np.diff(ij[:, 0] * n + ij[:, 1]) > 0):
    raise ValueError("bin centers must be unique and in row-major (a, b) grid order")
  return ABBins(centers=centers, step=float(step), extent=float(extent), grid_to_bin=grid_to_bin)


_FAR = 1e9  # squared distance given to candidates that are off the grid or out of gamut
_MAX_ID = np.iinfo(np.int32).max


def _encode_block(ab: Array, bins: ABBins, k: int) -> tuple[Array, Array]:
  """k nearest bins of ab (2, P) among the 3 x 3 grid points around each pixel's nearest one -> (k, P) each.

  Layout is candidates x pixels so every op vectorizes over pixels. Selection is k rounds of "take the
  minimum distance, and among equal distances the lowest bin index", the tie rule of `jax.lax.top_k` in the
  dense reference.
  """
  n = bins.grid_size
  near = jnp.round((ab + bins.extent) / bins.step).astype(jnp.int32)  # (2, P) nearest grid point
  offsets = jnp.arange(-1, 2, dtype=jnp.int32)
  ga = near[0][None, :] + jnp.repeat(offsets, 3)[:, None]  # (9, P), row-major over (a, b)
  gb = near[1][None, :] + jnp.tile(offsets, 3)[:, None]
  on_grid = (ga >= 0) & (ga < n) & (gb >= 0) & (gb < n)
  idx = jnp.asarray(bins.grid_to_bin)[jnp.clip(ga, 0, n - 1), jnp.clip(gb, 0, n - 1)]
  da = ab[0] - (ga.astype(jnp.float32) * bins.step - bins.extent)
  db = ab[1] - (gb.astype(jnp.float32) * bins.step - bins.extent)
  valid = on_grid & (idx >= 0)
  d2 = jnp.where(valid, da * da + db * db, _FAR)
  # Off-grid / out-of-gamut candidates get distinct negative ids, so every candidate's id is unique.
  ids = jnp.where(valid, idx, -1 - jnp.arange(idx.shape[0], dtype=jnp.int32)[:, None])
  best_i, best_d = [], []
  for _ in range(k):  # plain min-reductions only (argmin is a slow variadic reduce on CPU)
    nearest = jnp.min(d2, axis=0)
    chosen = jnp.min(jnp.where(d2 == nearest[None, :], ids, _MAX_ID), axis=0)  # lowest bin id on ties
    best_d.append(nearest)
    best_i.append(jnp.maximum(chosen, 0))  # a missing bin becomes bin 0 with weight ~0
    d2 = jnp.where(ids == chosen[None, :], jnp.inf, d2)
  return jnp.stack(best_i), jnp.stack(best_d)


def soft_encode(ab: Array, bins: ABBins, k: int = DEFAULT_K, sigma: float = DEFAULT_SIGMA,
                chunk: int = 16384) -> SoftTarget:
  """Sparse soft encoding of ab (..., 2) to its k nearest bins, searching only nearby grid cells.

  Each pixel's candidates are the 3 x 3 grid points around its nearest grid point, and pixels are
  processed `chunk` at a time (`lax.map`), so no (pixels, num_bins) tensor exists and scratch memory is
  O(chunk * 9) whatever the batch. Why 3 x 3 suffices: every grid point within 10 units (per axis) of an
  in-gamut ab is itself a bin (its 10-unit square contains that ab) and lies in the block, and any point
  outside the block is at least 15 units away; that the 5 nearest always fall inside was checked on the
  whole gamut surface (its hardest case) and 2M random colors (see tests), so results equal
  `soft_encode_dense` for every sRGB color; ab
  far outside the sRGB gamut (no real photo has it) gets the nearest in-gamut bins of the block, and bin 0
  (with weight 0, or 1 / k if the block holds no bin at all) for the missing ones.
  Returns indices (..., k) int32, nearest first, and Gaussian weights exp(-d^2 / (2 sigma^2)), normalized.
  """
  if not 1 <= k <= 9:
    raise ValueError(f"soft encoding searches 9 neighbouring bins, so k must be in [1, 9], got {k}")
  ab = jnp.asarray(ab, jnp.float32)
  batch_shape = ab.shape[:-1]
  flat = ab.reshape(-1, 2).T  # (2, P)
  num = flat.shape[1]
  chunk = max(1, min(chunk, num))
  pad = (-num) % chunk
  flat = jnp.pad(flat, ((0, 0), (0, pad))).reshape(2, -1, chunk).transpose(1, 0, 2)  # (chunks, 2, chunk)
  idx, d2 = jax.lax.map(lambda x: _encode_block(x, bins, k), flat)  # (chunks, k, chunk) each
  idx = idx.transpose(0, 2, 1).reshape(-1, k)[:num].reshape(batch_shape + (k,))
  d2 = d2.transpose(0, 2, 1).reshape(-1, k)[:num].reshape(batch_shape + (k,))
  return SoftTarget(idx, _gaussian_weights(d2, sigma))


def soft_encode_dense(ab: Array, bins: ABBins, k: int = DEFAULT_K,
                      sigma: float = DEFAULT_SIGMA) -> SoftTarget:
  """Reference soft encoding through the full (..., num_bins) distance tensor; for tests and benchmarks."""
  ab = jnp.asarray(ab, jnp.float32)
  c = jnp.asarray(bins.centers)
  d2 = (ab[..., None, 0] - c[:, 0]) ** 2 + (ab[..., None, 1] - c[:, 1]) ** 2  # (..., Q)
  neg_d2, idx = jax.lax.top_k(-d2, k)
  return SoftTarget(idx.astype(jnp.int32), _gaussian_weights(-neg_d2, sigma))


def _gaussian_weights(d2: Array, sigma: float) -> Array:
  # Shift by the nearest distance before exponentiating: same normalized weights, no underflow to 0 / 0.
  logits = -(d2 - d2[..., :1]) / (2.0 * sigma ** 2)
  w = jnp.exp(logits)
  return w / jnp.sum(w, axis=-1, keepdims=True)


def to_dense(target: SoftTarget, num_bins: int) -> Array:
  """Sparse soft target -> dense (..., num_bins) distribution (a scatter-add); for tests and references."""
  k = target.indices.shape[-1]
  idx = target.indices.reshape(-1, k)
  rows = jnp.arange(idx.shape[0])[:, None]
  dense = jnp.zeros((idx.shape[0], num_bins), target.weights.dtype)
  dense = dense.at[rows, idx].add(target.weights.reshape(-1, k))
  return dense.reshape(target.indices.shape[:-1] + (num_bins,))


def nearest_bin(ab: Array, bins: ABBins) -> Array:
  """Index (...,) of the nearest in-gamut bin of each ab (..., 2)."""
  return soft_encode(ab, bins, k=1).indices[..., 0]


def decode(logits: Array, bins: ABBins, method: str = "annealed_mean",
           temperature: float = DEFAULT_TEMPERATURE) -> Array:
  """Logits (..., Q) -> ab (..., 2) in Lab units.

  method: "mode" (center of the most likely bin), "mean" (expectation, T = 1) or "annealed_mean"
  (expectation under softmax(logits / T); T -> 0 approaches the mode, T = 1 is the mean).
  """
  centers = jnp.asarray(bins.centers)
  logits = jnp.asarray(logits, jnp.float32)
  if method == "mode":
    return centers[jnp.argmax(logits, axis=-1)]
  if method == "mean":
    temperature = 1.0
  elif method != "annealed_mean":
    raise ValueError(f"unknown decoding {method!r}; choose one of: {', '.join(DECODINGS)}")
  if isinstance(temperature, (int, float)) and temperature <= 0:  # (a traced temperature is checked by its caller)
    raise ValueError(f"annealed-mean temperature must be > 0, got {temperature}")
  return jax.nn.softmax(logits / temperature, axis=-1) @ centers


DECODINGS = ("mode", "mean", "annealed_mean")
