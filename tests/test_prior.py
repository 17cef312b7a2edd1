"""Empirical prior, smoothing, rebalancing weights, and saving them with a run."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.colorspace import color, prior, quantize

BINS = quantize.make_bins()


def _ab_batches(seed: int, n: int = 3):
  rng = np.random.default_rng(seed)
  for _ in range(n):
    yield color.rgb_to_lab(rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))[..., 1:]


def test_counts_match_numpy_nearest_bin():
  ab = np.concatenate([np.asarray(b).reshape(-1, 2) for b in _ab_batches(0)])
  d2 = ((ab[:, None, :] - BINS.centers[None]) ** 2).sum(-1)
  expected = np.bincount(d2.argmin(1), minlength=BINS.num_bins)
  np.testing.assert_array_equal(prior.bin_counts(jnp.asarray(ab), BINS), expected)


def test_streaming_equals_one_shot_and_mask_drops_pixels():
  batches = list(_ab_batches(1))
  acc = prior.PriorAccumulator(BINS)
  for b in batches:
    acc.add(b)
  one_shot = prior.bin_counts(jnp.concatenate(batches), BINS)
  np.testing.assert_array_equal(acc.counts, one_shot)
  assert acc.num_pixels == 3 * 2 * 8 * 8
  mask = jnp.array([True, False])  # per example: the second image is padding
  assert int(prior.bin_counts(batches[0], BINS, mask[:, None, None]).sum()) == 64


def test_prior_sums_to_one_and_weights_have_unit_expectation():
  p = prior.estimate_prior(_ab_batches(2), BINS)
  assert p.shape == (313,)
  np.testing.assert_allclose(float(p.sum()), 1.0, atol=1e-6)
  assert float(p.min()) > 0.0  # smoothing spreads mass to every bin near an observed color... or far
  w = prior.rebalance_weights(p, lam=0.5)
  np.testing.assert_allclose(float(jnp.sum(p * w)), 1.0, atol=1e-5)
  # Rare colors weigh more; lambda = 1 gives uniform weights, lambda = 0 gives 1 / p (normalized).
  assert float(w[jnp.argmin(p)]) > float(w[jnp.argmax(p)])
  np.testing.assert_allclose(prior.rebalance_weights(p, lam=1.0), 1.0, atol=1e-5)
  w0 = prior.rebalance_weights(p, lam=0.0)
  np.testing.assert_allclose(w0 * p, np.full(313, 1.0 / 313), rtol=1e-4)
  with pytest.raises(ValueError, match="lambda"):
    prior.rebalance_weights(p, lam=1.5)


def test_smoothing_is_a_gaussian_over_bin_centers():
  p = jnp.zeros(313).at[150].set(1.0)
  s = np.asarray(prior.smooth_prior(p, BINS, sigma=5.0))
  d2 = ((BINS.centers - BINS.centers[150]) ** 2).sum(-1)
  expected = np.exp(-d2 / 50.0)
  np.testing.assert_allclose(s, expected / expected.sum(), rtol=1e-5, atol=1e-12)
  np.testing.assert_allclose(prior.smooth_prior(p, BINS, sigma=0.0), p)


def test_pixel_weight_is_weight_of_nearest_bin():
  ab = next(_ab_batches(3))
  target = quantize.soft_encode(ab, BINS)
  w = jnp.linspace(0.5, 2.0, 313)
  np.testing.assert_allclose(prior.pixel_weights(target, w), w[quantize.nearest_bin(ab, BINS)])


def test_save_and_load_round_trip_without_pickle(tmp_path):
  p = prior.estimate_prior(_ab_batches(4), BINS)
  path = tmp_path / "prior.npz"
  prior.save_prior(path, p, BINS)
  loaded, bins = prior.load_prior(path)
  np.testing.assert_array_equal(loaded, p)
  np.testing.assert_array_equal(bins.centers, BINS.centers)
  (tmp_path / "bad.npz").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="bad.npz"):
    prior.load_prior(tmp_path / "bad.npz")


def test_empty_accumulator_is_a_clear_error():
  with pytest.raises(ValueError, match="no pixels"):
    prior.PriorAccumulator(BINS).prior()
