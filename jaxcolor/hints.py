"""Color hints: sparse ab points given with L, as the user-guided colorizer of Zhang et al. 2017 takes them.

A hint is a rectangle of pixels with one ab color. The model sees three channels beside L, (B, H, W, 3):
ab / AB_SCALE of the hinted pixels (0 elsewhere) and a mask (1 where hinted, 0 elsewhere). Without hints
(all zeros) a hint-taking model colorizes automatically.

Training simulates hints from the truth, on the device (`HintSampler`): per photo a number of points drawn
from a geometric distribution on {0, 1, 2, ...} (P(n) = p (1 - p)^n, so p = 1/8 gives no hint 1/8 of the time
and 7 points on average), each a square patch of 1-9 px whose hint is the true mean ab over the patch, placed
around the center (a Gaussian of std a quarter of the size, as the paper) or uniformly. At most `max_points`
points per photo (a static shape; with p = 1/8 and 64 points, 0.02% of photos would have had more).
`paint` is shared with user hints (`jaxcolor.inference.guide`), which arrive as rectangles in pixels.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxcolor.colorspace import color

Array = jnp.ndarray
CHANNELS = 3  # ab / AB_SCALE (2) and the mask (1)
LOCATIONS = ("gaussian", "uniform")
STREAM = 7  # folded into the step's key: hint draws independent of dropout's


def no_hints(l: Array) -> Array:
  """Zero hint channels (B, H, W, 3) for L (B, H, W, 1): automatic colorization."""
  return jnp.zeros(l.shape[:-1] + (CHANNELS,), jnp.float32)


def paint(top: Array, left: Array, height: Array, width: Array, ab: Array, active: Array,
          size: tuple[int, int]) -> Array:
  """Hint channels (B, H, W, 3) from K rectangles per photo, each (B, K): top / left corner, height / width in
  pixels, ab (B, K, 2) in Lab units, active (bool). A later rectangle paints over an earlier one."""
  h, w = size
  rows, cols = jnp.arange(h), jnp.arange(w)

  def one(k, channels):
    inside_r = (rows[None] >= top[:, k, None]) & (rows[None] < top[:, k, None] + height[:, k, None])  # (B, H)
    inside_c = (cols[None] >= left[:, k, None]) & (cols[None] < left[:, k, None] + width[:, k, None])  # (B, W)
    inside = inside_r[:, :, None] & inside_c[:, None, :] & active[:, k, None, None]  # (B, H, W)
    value = jnp.concatenate([color.ab_to_unit(ab[:, k]), jnp.ones_like(ab[:, k, :1])], -1)  # (B, 3)
    return jnp.where(inside[..., None], value[:, None, None, :], channels)

  init = jnp.zeros((top.shape[0], h, w, CHANNELS), jnp.float32)
  return jax.lax.fori_loop(0, top.shape[1], one, init)


def patch_means(ab: Array, top: Array, left: Array, side: Array, side_max: int) -> Array:
  """Mean of ab (B, H, W, 2) over the side x side patches at (top, left), each (B, K) -> (B, K, 2): a
  side_max x side_max window is cut at each corner and masked to the patch (exact; side <= side_max)."""
  padded = jnp.pad(ab.astype(jnp.float32), ((0, 0), (0, side_max), (0, side_max), (0, 0)))
  cut = lambda image, r, c: jax.lax.dynamic_slice(image, (r, c, 0), (side_max, side_max, 2))
  windows = jax.vmap(jax.vmap(cut, in_axes=(None, 0, 0)))(padded, top, left)  # (B, K, side_max, side_max, 2)
  inside = jnp.arange(side_max)[None, None, :] < side[..., None]  # (B, K, side_max)
  weight = (inside[..., :, None] & inside[..., None, :]).astype(jnp.float32)[..., None]
  return (windows * weight).sum(axis=(2, 3)) / (side * side)[..., None].astype(jnp.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class HintSampler:
  """Simulated hints (`config.hints`); hashed by identity so it can be a static jit argument.

  p: the geometric distribution's parameter (P(no hint) = p); max_points: the cap K; patch_sizes: square sides
  drawn uniformly; location: "gaussian" (around the center) or "uniform".
  """
  p: float = 0.125
  max_points: int = 64
  patch_sizes: tuple[int, ...] = tuple(range(1, 10))
  location: str = "gaussian"

  def __post_init__(self):
    if self.location not in LOCATIONS:
      raise ValueError(f"unknown hints.location {self.location!r}; choose one of: {', '.join(LOCATIONS)}")
    if not 0.0 < self.p <= 1.0:
      raise ValueError(f"hints.p must be in (0, 1], got {self.p}")
    if self.max_points < 1 or not self.patch_sizes or min(self.patch_sizes) < 1:
      raise ValueError(f"hints.max_points and hints.patch_sizes must be positive, got {self.max_points} and "
                       f"{tuple(self.patch_sizes)}")

  def counts(self, rng: Array, batch: int) -> Array:
    """(B,) int32 point counts: geometric on {0, 1, ...} with P(n >= k) = (1 - p)^k, capped at max_points."""
    u = jax.random.uniform(rng, (batch,), minval=jnp.finfo(jnp.float32).tiny, maxval=1.0)
    n = jnp.floor(jnp.log(u) / jnp.log1p(-self.p)) if self.p < 1.0 else jnp.zeros((batch,))
    return jnp.minimum(n, self.max_points).astype(jnp.int32)

  def __call__(self, rng: Array, ab: Array, num_points: int | None = None) -> Array:
    """True ab (B, H, W, 2) in Lab units -> hint channels (B, H, W, 3): a random count of points per photo
    (`counts`), or exactly `num_points` each (evaluation: hints against their number)."""
    b, h, w, _ = ab.shape
    side_max = max(self.patch_sizes)
    if min(h, w) < side_max:
      raise ValueError(f"hint patches up to {side_max} px do not fit a {h}x{w} image")
    k = self.max_points if num_points is None else max(int(num_points), 1)
    r_count, r_side, r_row, r_col = jax.random.split(rng, 4)
    if num_points is None:
      active = jnp.arange(k)[None] < self.counts(r_count, b)[:, None]  # (B, K)
    else:
      active = jnp.full((b, k), num_points > 0)
    side = jnp.asarray(self.patch_sizes, jnp.int32)[jax.random.randint(r_side, (b, k), 0, len(self.patch_sizes))]
    top, left = self._corner(r_row, side, h), self._corner(r_col, side, w)  # (B, K) each
    return paint(top, left, side, side, patch_means(ab, top, left, side, side_max), active, (h, w))

  def _corner(self, rng: Array, side: Array, extent: int) -> Array:
    """Top (or left) corner of each patch, in [0, extent - side]."""
    span = (extent - side + 1).astype(jnp.float32)
    if self.location == "uniform":
      pos = jax.random.uniform(rng, side.shape) * span
    else:
      pos = span / 2 + span / 4 * jax.random.normal(rng, side.shape)
    return jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, extent - side)


def photo_keys(seed: int, images: Array) -> Array:
  """(B,) keys, one per photo of uint8 images (B, H, W, C), from `seed` and the photo's own pixels.

  The evaluation of hints draws each photo's hints from its key (`per_photo`), so a photo gets the same hints
  whatever batch it comes in, at whatever position and batch size. The pixels are hashed by a weighted sum in
  uint32 (wrapping: exact integer arithmetic, the same on every backend).
  """
  flat = images.reshape(images.shape[0], -1).astype(jnp.uint32)
  weights = jnp.arange(flat.shape[1], dtype=jnp.uint32) * jnp.uint32(2654435761) + jnp.uint32(1)
  digest = jnp.sum(flat * weights[None], axis=1, dtype=jnp.uint32)  # (B,)
  return jax.vmap(lambda d: jax.random.fold_in(jax.random.key(seed), d))(digest)


def per_photo(sampler: HintSampler, keys: Array, ab: Array, num_points: int) -> Array:
  """Exactly `num_points` hints per photo, photo i's drawn from keys[i] alone: ab (B, H, W, 2) -> (B, H, W, 3)."""
  return jax.vmap(lambda key, one: sampler(key, one[None], num_points=num_points)[0])(keys, ab)


def sampler_from_fields(fields: Mapping[str, Any]) -> HintSampler:
  """`config.hints` fields -> sampler."""
  h = {k: v for k, v in dict(fields).items() if k != "enabled"}
  if "patch_sizes" in h:
    h["patch_sizes"] = tuple(int(s) for s in h["patch_sizes"])
  return HintSampler(**h)


def sampler_from_config(config) -> HintSampler | None:
  """`config.hints` -> a HintSampler, or None when hints are off (`hints.enabled` false)."""
  return sampler_from_fields(config.hints) if config.hints.enabled else None
