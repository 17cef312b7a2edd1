"""Hint propagation: a person's hint colors carried along the photo's edges, past where the network took them.

A guided network (Zhang et al. 2017; `jaxcolor.hints`) colors around its hints, but it does not reproduce a hint
exactly and the hint's color fades before its object ends. `Propagation` corrects the network's ab with the
hints' residuals, res = hint ab - network ab at the hinted pixels, spread by an edge-aware screened diffusion on
L: the correction x (H, W, 2) minimizes

    sum over 4-neighbours r~s of w_rs (x_r - x_s)^2 + weight * sum over hinted r of (x_r - res_r)^2
                                                    + eps * sum over all r of x_r^2,

with w_rs = exp(-(L_r - L_s)^2 / (2 sigma^2)) (L in [0, 100]): a correction flows freely between pixels of equal
lightness and stops at edges, as in optimization-based colorization (Levin et al. 2004, which propagates the hint
colors themselves); `eps` makes it fade far from every hint (over about 1 / sqrt(eps) px of flat region), so what
the network chose away from the hints is kept. Its normal equations (a weighted graph Laplacian plus a diagonal,
symmetric positive definite) are solved per photo by Jacobi-preconditioned conjugate gradients, jnp ops at the
model's input size. Without hints the correction is exactly zero.

The colors corrected are not the network's with the hints as they are: its response to the hints (its ab with
them minus without them) is kept at `network_share` (`Propagation.blend`), so the network's spread of a hint,
which crosses object edges, and the diffusion's, which stops at them, each carry part of it.

Between the blend and the diffusion, a lightness-indexed correction (`Propagation.by_lightness`) moves every
pixel by the residuals of the hinted pixels of similar L, wherever they are in the photo: what the hints say
about a lightness holds across the photo, as in transferring color by matching luminance (Welsh et al. 2002).
It reaches regions the diffusion cannot (the same sky behind a tree); the diffusion then makes the hints exact
near them. Without hints it is exactly zero too.

Settings chosen on held-out scenes_256 photos (10 hints at 192 px: sigma with `guided`'s first stage, eps,
network_share and the lightness correction with the shipped `guided`); measured in
experiments/reference_colorizers/README.md.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxcolor.colorspace import color

Array = jnp.ndarray


def edge_weights(l: Array, sigma: float) -> tuple[Array, Array]:
  """L (H, W, 1) -> weights between horizontal neighbours (H, W - 1) and vertical ones (H - 1, W)."""
  l = l[..., 0].astype(jnp.float32)
  across = jnp.exp(-jnp.square(l[:, 1:] - l[:, :-1]) / (2 * sigma ** 2))
  down = jnp.exp(-jnp.square(l[1:] - l[:-1]) / (2 * sigma ** 2))
  return across, down


def laplacian(x: Array, across: Array, down: Array) -> Array:
  """The weighted graph Laplacian of the 4-neighbour grid applied to x (H, W, C)."""
  dx = (x[:, 1:] - x[:, :-1]) * across[..., None]  # (H, W - 1, C): flow from each pixel to its right neighbour
  dy = (x[1:] - x[:-1]) * down[..., None]
  pad = lambda a, axis, before: jnp.pad(a, [(int(before), int(not before)) if i == axis else (0, 0)
                                            for i in range(3)])
  return pad(dx, 1, True) - pad(dx, 1, False) + pad(dy, 0, True) - pad(dy, 0, False)


@dataclasses.dataclass(frozen=True)
class Propagation:
  """Edge-aware spreading of the hint residuals (module docstring); hashable, so a static jit argument.

  sigma: L difference (of 100) at which a neighbour's weight is exp(-1/2); eps: fading far from hints; weight:
  how strongly a hinted pixel is held to its hint; iters / tol: the conjugate gradients' limits (per photo).
  network_share: how much of the network's response to the hints is kept before the residuals are spread (see
  `blend`); 1 keeps the network's colors as they are. lightness_sigma: the L difference (of 100) over which the
  lightness-indexed correction (`by_lightness`) carries a hinted pixel's residual, 0: no such correction;
  lightness_prior: how many hinted pixels of a lightness it takes to move that lightness half way.
  """
  sigma: float = 2.0
  eps: float = 1e-6
  weight: float = 10.0
  iters: int = 500
  tol: float = 1e-5
  network_share: float = 0.6
  lightness_sigma: float = 10.0
  lightness_prior: float = 1.0

  def __post_init__(self):
    if (min(self.sigma, self.eps, self.weight, self.lightness_prior) <= 0 or self.iters < 1
        or not 0 <= self.network_share <= 1 or self.lightness_sigma < 0):
      raise ValueError(f"Propagation needs sigma, eps, weight, lightness_prior > 0, lightness_sigma >= 0, "
                       f"iters >= 1 and network_share in [0, 1], got {self}")

  def blend(self, hinted: Array, unhinted: Array) -> Array:
    """The network's ab with the hints (B, H, W, 2) and without them -> unhinted + network_share * (hinted -
    unhinted): the starting colors the residuals correct. The network carries a hint's color across object
    edges; the diffusion stops at them. With 0.6 of the network's response (chosen on held-out scenes_256, 10
    hints, eps 1e-5: 28.52 dB against 28.19 with all of it and 27.89 with none) the two together score higher
    than either alone (experiments/reference_colorizers/README.md)."""
    if self.network_share == 1:
      return hinted
    return unhinted + self.network_share * (hinted - unhinted)

  def correction(self, residual: Array, mask: Array, l: Array) -> Array:
    """residual (H, W, 2) (used where mask (H, W, 1) is 1), L (H, W, 1) -> the correction x (H, W, 2)."""
    across, down = edge_weights(l, self.sigma)
    held = self.weight * mask + self.eps  # (H, W, 1)
    matvec = lambda x: laplacian(x, across, down) + held * x
    degree = (jnp.pad(across, ((0, 0), (1, 0))) + jnp.pad(across, ((0, 0), (0, 1)))
              + jnp.pad(down, ((1, 0), (0, 0))) + jnp.pad(down, ((0, 1), (0, 0))))[..., None]
    inverse_diagonal = 1.0 / (degree + held)
    x, _ = jax.scipy.sparse.linalg.cg(matvec, self.weight * mask * residual, tol=self.tol, maxiter=self.iters,
                                      M=lambda v: inverse_diagonal * v)
    return x

  def by_lightness(self, residual: Array, mask: Array, l: Array) -> Array:
    """residual (H, W, 2) (used where mask (H, W, 1) is 1), L (H, W, 1) -> the correction (H, W, 2) of each
    pixel p: sum_r k(L_p - L_r) residual_r / (sum_r k(L_p - L_r) + lightness_prior) over the hinted pixels r,
    k(d) = exp(-d^2 / (2 lightness_sigma^2)). Computed on L binned to the 101 integers 0..100 (each pixel split
    linearly between its two nearest), so it costs O(H W) whatever the number of hints, and is exact for
    integer L."""
    bins = 101
    pos = jnp.clip(l.reshape(-1).astype(jnp.float32), 0.0, bins - 1.0)
    low = jnp.floor(pos).astype(jnp.int32)
    high = jnp.minimum(low + 1, bins - 1)
    frac = (pos - low)[:, None]  # (H W, 1)
    sums = jnp.concatenate([residual, mask], -1).reshape(-1, 3)  # per pixel: mask * residual (2), mask
    per_bin = (jax.ops.segment_sum(sums * (1 - frac), low, bins)
               + jax.ops.segment_sum(sums * frac, high, bins))  # (101, 3)
    centres = jnp.arange(bins, dtype=jnp.float32)
    kernel = jnp.exp(-jnp.square(centres[:, None] - centres[None]) / (2 * self.lightness_sigma ** 2))
    smooth = jnp.dot(kernel, per_bin, precision=jax.lax.Precision.HIGHEST)  # (101, 3)
    shift = smooth[:, :2] / (smooth[:, 2:] + self.lightness_prior)  # (101, 2)
    return (shift[low] * (1 - frac) + shift[high] * frac).reshape(residual.shape)

  def __call__(self, ab: Array, hints: Array, l: Array, unhinted: Array | None = None) -> Array:
    """Network ab (B, H, W, 2), hint channels (B, H, W, 3) (`jaxcolor.hints`), L (B, H, W, 1) -> corrected ab.
    unhinted: the network's ab without the hints (B, H, W, 2); needed unless network_share is 1 (`blend`)."""
    if self.network_share != 1:
      if unhinted is None:
        raise ValueError(f"Propagation with network_share={self.network_share} needs the network's ab without "
                         f"the hints (unhinted=)")
      ab = self.blend(ab, unhinted)
    mask = hints[..., 2:].astype(jnp.float32)
    hint_ab = color.unit_to_ab(hints[..., :2].astype(jnp.float32))
    if self.lightness_sigma:
      ab = ab + jax.vmap(self.by_lightness)((hint_ab - ab.astype(jnp.float32)) * mask, mask, l).astype(ab.dtype)
    residual = (hint_ab - ab.astype(jnp.float32)) * mask
    return ab + jax.vmap(self.correction)(residual, mask, l).astype(ab.dtype)

  @classmethod
  def parse(cls, text: str) -> Propagation:
    """Text "name=value,..." (e.g. "network_share=1,lightness_sigma=0": the diffusion alone, on the network's
    colors) -> the defaults with those settings changed; an unknown name errors with the choices, a value that is
    not a number with its name (`evaluate_hints --propagation`: the settings' tables re-measured)."""
    kinds = {f.name: type(f.default) for f in dataclasses.fields(cls)}  # int or float
    given = {}
    for item in (t.strip() for t in text.split(",")):
      if not item:
        continue
      name, sep, value = (x.strip() for x in item.partition("="))
      if name not in kinds or not sep:
        raise ValueError(f"propagation setting {item!r}: expected name=value with a name in "
                         f"{', '.join(kinds)}")
      try:
        given[name] = kinds[name](value)
      except ValueError:
        raise ValueError(f"propagation setting {name}={value!r} is not a number") from None
    return cls(**given)
