"""Empirical ab prior and class-rebalancing weights (Zhang et al. 2016, sec. 2.2), as jnp ops.

Natural photos are dominated by desaturated ab (skies, walls, roads), so a plain cross-entropy learns to
predict grey. Zhang et al. reweight each pixel's loss by the rarity of its color: with p the empirical
distribution of the nearest bin over the training set, smoothed by a Gaussian (sigma 5) in ab space,
    w  proportional to  ((1 - lambda) p + lambda / Q) ** -1,  normalized so that  sum_q p_q w_q = 1,
and a pixel's weight is w of its nearest bin (the bin with the largest soft-encoding weight).

The prior is computed by streaming: `PriorAccumulator` adds the bin counts of any iterator of ab batches,
and `save_prior` / `load_prior` keep it with a run as a plain .npz (no pickle).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import storage
from jaxcolor.colorspace import quantize

Array = jnp.ndarray

DEFAULT_LAMBDA = 0.5
DEFAULT_PRIOR_SIGMA = 5.0


@functools.partial(jax.jit, static_argnames=("bins",))
def bin_counts(ab: Array, bins: quantize.ABBins, mask: Array | None = None) -> Array:
  """Histogram (Q,) of the nearest bin of each pixel of ab (..., 2); `mask` (...,) drops padded pixels."""
  ab = jnp.asarray(ab, jnp.float32)
  mask = jnp.ones(ab.shape[:-1], bool) if mask is None else jnp.broadcast_to(mask, ab.shape[:-1])
  nearest = quantize.nearest_bin(ab, bins)
  return jnp.zeros(bins.num_bins, jnp.float32).at[nearest.ravel()].add(mask.ravel().astype(jnp.float32))


@dataclasses.dataclass
class PriorAccumulator:
  """Streaming bin counts: `add` each ab batch, then `prior()` for the smoothed distribution."""
  bins: quantize.ABBins
  counts: np.ndarray = dataclasses.field(init=False)

  def __post_init__(self):
    self.counts = np.zeros(self.bins.num_bins, np.float64)  # float64: exact up to 2^53 pixels

  def add(self, ab: Array, mask: Array | None = None) -> None:
    self.counts += np.asarray(bin_counts(ab, self.bins, mask), np.float64)

  @property
  def num_pixels(self) -> int:
    return int(self.counts.sum())

  def prior(self, sigma: float = DEFAULT_PRIOR_SIGMA) -> Array:
    if self.num_pixels == 0:
      raise ValueError("no pixels were added to the prior; is the dataset empty?")
    return smooth_prior(jnp.asarray(self.counts / self.counts.sum(), jnp.float32), self.bins, sigma)


def estimate_prior(ab_batches: Iterable[Array], bins: quantize.ABBins,
                   sigma: float = DEFAULT_PRIOR_SIGMA) -> Array:
  """Smoothed empirical prior (Q,) from any iterable of ab batches (..., 2) in Lab units."""
  acc = PriorAccumulator(bins)
  for ab in ab_batches:
    acc.add(ab)
  return acc.prior(sigma)


def smooth_prior(p: Array, bins: quantize.ABBins, sigma: float = DEFAULT_PRIOR_SIGMA) -> Array:
  """Gaussian smoothing of a distribution over bins in ab space (kernel over bin-center distances)."""
  if sigma <= 0:
    return p / jnp.sum(p)
  c = jnp.asarray(bins.centers)
  d2 = jnp.sum((c[:, None, :] - c[None, :, :]) ** 2, axis=-1)  # (Q, Q); Q is a few hundred
  kernel = jnp.exp(-d2 / (2.0 * sigma ** 2))
  smoothed = kernel @ p
  return smoothed / jnp.sum(smoothed)


def rebalance_weights(prior: Array, lam: float = DEFAULT_LAMBDA) -> Array:
  """Class weights w (Q,) = ((1 - lam) p + lam / Q)^-1, scaled so that sum_q p_q w_q = 1."""
  if not 0.0 <= lam <= 1.0:
    raise ValueError(f"rebalancing lambda must be in [0, 1], got {lam}")
  prior = jnp.asarray(prior, jnp.float32)
  w = 1.0 / ((1.0 - lam) * prior + lam / prior.shape[0])
  return w / jnp.sum(prior * w)


def pixel_weights(target: quantize.SoftTarget, class_weights: Array) -> Array:
  """Per-pixel rebalancing weight (...,): w of the bin with the largest soft weight (the nearest, index 0)."""
  return jnp.asarray(class_weights)[target.indices[..., 0]]


def save_prior(path: str | os.PathLike, prior: Array, bins: quantize.ABBins) -> None:
  """Writes the prior with the bins it refers to, as .npz, whole or not at all (local or gs://)."""
  storage.write_atomic(path, lambda f: np.savez(f, prior=np.asarray(prior, np.float32), centers=bins.centers,
                                                step=np.float32(bins.step), extent=np.float32(bins.extent)))


def load_prior(path: str | os.PathLike) -> tuple[Array, quantize.ABBins]:
  """Reads a prior saved by `save_prior` (no pickle) -> (prior (Q,), bins)."""
  try:
    with np.load(storage.open_bytes(path), allow_pickle=False) as f:
      prior, centers = f["prior"], f["centers"]
      step, extent = float(f["step"]), float(f["extent"])
  except (OSError, KeyError, ValueError) as e:
    raise ValueError(f"{path}: not a jaxcolor prior file ({e})") from e
  if prior.shape != (centers.shape[0],):
    raise ValueError(f"{path}: prior has shape {prior.shape} but there are {centers.shape[0]} bins")
  return jnp.asarray(prior), quantize.bins_from_centers(centers, step, extent)
