"""jaxcolor/hint_propagation.py: the hints' residuals spread along L's edges, against a float64 dense solve."""
import numpy as np
import pytest

import jax.numpy as jnp

from jaxcolor import hint_propagation
from jaxcolor.colorspace import color


def dense_system(l: np.ndarray, mask: np.ndarray, p: hint_propagation.Propagation) -> np.ndarray:
  """The propagation's matrix (H W, H W) built entry by entry in float64: the oracle."""
  h, w = l.shape
  a = np.diag((p.weight * mask + p.eps).reshape(-1).astype(np.float64))
  for r in range(h):
    for c in range(w):
      for dr, dc in ((0, 1), (1, 0)):
        if r + dr < h and c + dc < w:
          i, j = r * w + c, (r + dr) * w + c + dc
          wt = np.exp(-(float(l[r, c]) - float(l[r + dr, c + dc])) ** 2 / (2 * p.sigma ** 2))
          a[i, i] += wt
          a[j, j] += wt
          a[i, j] -= wt
          a[j, i] -= wt
  return a


def test_laplacian_matches_the_dense_matrix():
  rng = np.random.default_rng(0)
  l, x = rng.uniform(0, 100, (5, 7)), rng.normal(size=(5, 7, 2))
  p = hint_propagation.Propagation(sigma=30.0)
  across, down = hint_propagation.edge_weights(jnp.asarray(l[..., None], jnp.float32), p.sigma)
  got = np.asarray(hint_propagation.laplacian(jnp.asarray(x, jnp.float32), across, down))
  lap = dense_system(l, np.zeros((5, 7)), p) - p.eps * np.eye(35)
  want = (lap @ x.reshape(35, 2)).reshape(5, 7, 2)
  # Each entry sums at most 8 float32 products of magnitude <= 4 |x|max: a few float32 ulps of that.
  np.testing.assert_allclose(got, want, atol=8 * 4 * np.abs(x).max() * np.finfo(np.float32).eps)


def test_correction_solves_the_system():
  rng = np.random.default_rng(1)
  h, w = 6, 7
  l = rng.uniform(20, 80, (h, w))
  mask = np.zeros((h, w))
  mask[1, 2] = mask[4, 5] = 1.0
  residual = rng.normal(scale=20.0, size=(h, w, 2)) * mask[..., None]
  p = hint_propagation.Propagation(sigma=10.0, eps=1e-2, weight=10.0, iters=400, tol=1e-7)
  a = dense_system(l, mask, p)
  want = np.linalg.solve(a, (p.weight * mask[..., None] * residual).reshape(-1, 2)).reshape(h, w, 2)
  got = np.asarray(p.correction(jnp.asarray(residual, jnp.float32), jnp.asarray(mask[..., None], jnp.float32),
                                jnp.asarray(l[..., None], jnp.float32)))
  # The solution's relative error is at most cond(A) times the residual's (tol, or float32 rounding).
  cond = np.linalg.cond(a)
  bound = cond * max(p.tol, 30 * np.finfo(np.float32).eps) * np.abs(want).max()
  assert cond < 1e4  # (so the bound below says something)
  np.testing.assert_allclose(got, want, atol=bound)


def _photo(hint_at=(4, 3), ab=(40.0, -30.0)):
  """A 16 x 16 L with a dark left half and a light right half, a network that predicted ab = 0, one 1 px hint."""
  l = np.full((1, 16, 16, 1), 30.0, np.float32)
  l[:, :, 8:] = 70.0
  hints = np.zeros((1, 16, 16, 3), np.float32)
  r, c = hint_at
  hints[0, r, c, :2] = np.asarray(color.ab_to_unit(jnp.asarray(ab)))
  hints[0, r, c, 2] = 1.0
  return jnp.asarray(l), jnp.asarray(hints), jnp.zeros((1, 16, 16, 2))


def test_a_hint_fills_its_region_and_stops_at_the_edge():
  l, hints, ab = _photo()
  diffusion = hint_propagation.Propagation(lightness_sigma=0.0)  # the lightness-indexed step: tests below
  out = np.asarray(diffusion(ab, hints, l, unhinted=ab))[0]
  np.testing.assert_allclose(out[4, 3], [40.0, -30.0], atol=1.0)  # the hinted pixel takes the hint's color
  left, right = out[:, :8], out[:, 8:]
  assert np.abs(left - np.array([40.0, -30.0])).max() < 2.0  # the whole dark region (eps: little fading in 8 px)
  assert np.abs(right).max() < 0.1  # nothing crosses a 40-unit edge in L


def test_no_hints_change_nothing_and_photos_are_independent():
  l, hints, ab = _photo()
  p = hint_propagation.Propagation(network_share=1.0)  # the diffusion alone (the blend: the tests below)
  rng = np.random.default_rng(2)
  net = jnp.asarray(rng.normal(scale=10.0, size=(2, 16, 16, 2)), jnp.float32)
  l2 = jnp.concatenate([l, l[:, ::-1]])
  none = p(net, jnp.zeros((2, 16, 16, 3)), l2)
  np.testing.assert_array_equal(np.asarray(none), np.asarray(net))
  alone = p(net[:1], hints, l2[:1])
  batched = p(net, jnp.concatenate([hints, jnp.zeros_like(hints)]), l2)
  np.testing.assert_allclose(np.asarray(batched[:1]), np.asarray(alone), atol=1e-4)  # per-photo solves
  np.testing.assert_array_equal(np.asarray(batched[1]), np.asarray(net[1]))


def test_the_network_share_blends_before_the_residuals_are_spread():
  """network_share s: the corrected colors start from unhinted + s (hinted - unhinted); the hinted pixel still
  ends at the hint, and where the network did not respond to the hints (or there are none) nothing moves."""
  l, hints, _ = _photo()
  rng = np.random.default_rng(3)
  unhinted = jnp.asarray(rng.normal(scale=10.0, size=(1, 16, 16, 2)), jnp.float32)
  hinted = unhinted + jnp.asarray(rng.normal(scale=10.0, size=(1, 16, 16, 2)), jnp.float32)
  for share in (0.0, 0.3, 1.0):
    p = hint_propagation.Propagation(network_share=share)
    start = hinted if share == 1 else unhinted + share * (hinted - unhinted)
    np.testing.assert_allclose(np.asarray(p.blend(hinted, unhinted)), np.asarray(start), atol=1e-5)
    want = hint_propagation.Propagation(network_share=1.0)(start, hints, l)  # the same diffusion from `start`
    got = p(hinted, hints, l, unhinted=unhinted)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    np.testing.assert_allclose(np.asarray(got)[0, 4, 3], [40.0, -30.0], atol=1.0)
    none = p(unhinted, jnp.zeros_like(hints), l, unhinted=unhinted)  # no hints: the network's response is zero
    np.testing.assert_array_equal(np.asarray(none), np.asarray(unhinted))


def test_the_lightness_correction_matches_its_formula():
  """by_lightness against the direct float64 sum over the hinted pixels, on integer L (where binning is exact)."""
  rng = np.random.default_rng(4)
  h, w = 9, 11
  l = rng.integers(0, 101, (h, w)).astype(np.float64)
  mask = (rng.uniform(size=(h, w)) < 0.15).astype(np.float64)
  residual = rng.normal(scale=30.0, size=(h, w, 2)) * mask[..., None]
  p = hint_propagation.Propagation(lightness_sigma=8.0, lightness_prior=0.5)
  k = np.exp(-(l.reshape(-1, 1) - l.reshape(1, -1)) ** 2 / (2 * p.lightness_sigma ** 2)) * mask.reshape(1, -1)
  want = (k @ residual.reshape(-1, 2)) / (k.sum(1, keepdims=True) + p.lightness_prior)
  got = np.asarray(p.by_lightness(jnp.asarray(residual, jnp.float32), jnp.asarray(mask[..., None], jnp.float32),
                                  jnp.asarray(l[..., None], jnp.float32)))
  # A weighted mean of residuals (|r| <= max) over <= h w terms, in float32: relative error ~ h w ulps of it.
  np.testing.assert_allclose(got.reshape(-1, 2), want, atol=h * w * np.finfo(np.float32).eps * np.abs(residual).max())
  assert np.abs(want).max() > 5.0  # (so the comparison says something)


def test_a_hint_reaches_a_separate_region_of_its_lightness():
  """Two dark strips (L 30) split by a light one (L 70), one hint in the left strip: the diffusion alone leaves
  the right strip as the network colored it; the lightness-indexed step moves it by the hint's residual times
  n / (n + prior) (n = 1 hinted pixel), and barely touches the light strip between."""
  l = np.full((1, 16, 18, 1), 30.0, np.float32)
  l[:, :, 6:12] = 70.0
  hints = np.zeros((1, 16, 18, 3), np.float32)
  hints[0, 5, 2, :2] = np.asarray(color.ab_to_unit(jnp.asarray([40.0, -30.0])))
  hints[0, 5, 2, 2] = 1.0
  ab = jnp.zeros((1, 16, 18, 2))
  l, hints = jnp.asarray(l), jnp.asarray(hints)
  alone = np.asarray(hint_propagation.Propagation(lightness_sigma=0.0, network_share=1.0)(ab, hints, l))[0]
  both = np.asarray(hint_propagation.Propagation(network_share=1.0)(ab, hints, l))[0]
  assert np.abs(alone[:, 12:]).max() < 0.1
  np.testing.assert_allclose(both[:, 12:], np.broadcast_to([20.0, -15.0], (16, 6, 2)), atol=0.2)
  assert np.abs(both[:, 6:12]).max() < 0.1  # exp(-40^2 / 200) of the residual
  np.testing.assert_allclose(both[5, 2], [40.0, -30.0], atol=1.0)  # the diffusion still makes the hint exact


def test_a_share_below_one_needs_the_unhinted_colors():
  l, hints, ab = _photo()
  with pytest.raises(ValueError, match="without the hints"):
    hint_propagation.Propagation(network_share=0.5)(ab, hints, l)


@pytest.mark.parametrize("bad", [dict(sigma=0.0), dict(eps=-1.0), dict(weight=0.0), dict(iters=0),
                                 dict(network_share=-0.1), dict(network_share=1.5), dict(lightness_sigma=-1.0),
                                 dict(lightness_prior=0.0)])
def test_bad_settings_are_refused(bad):
  with pytest.raises(ValueError, match="Propagation needs"):
    hint_propagation.Propagation(**bad)


def test_settings_parse_from_text():
  P = hint_propagation.Propagation
  assert P.parse("") == P()
  assert P.parse(" network_share=1, lightness_sigma=0 ,iters=40") == P(network_share=1.0, lightness_sigma=0.0,
                                                                        iters=40)
  with pytest.raises(ValueError, match="sigma, eps, weight"):  # unknown: the choices are named
    P.parse("lightness=0")
  with pytest.raises(ValueError, match="is not a number"):
    P.parse("eps=small")
  with pytest.raises(ValueError, match="Propagation needs"):  # parsed, then checked as any setting
    P.parse("network_share=2")
