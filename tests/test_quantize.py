"""ab bins, sparse soft encoding against the dense reference, and decoding."""
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from scipy.spatial import ConvexHull

from jaxcolor.colorspace import color, quantize

BINS = quantize.make_bins()
_sparse = jax.jit(lambda ab: quantize.soft_encode(ab, BINS))
_dense = jax.jit(lambda ab: quantize.soft_encode_dense(ab, BINS))


def test_default_grid_gives_zhangs_313_bins():
  c = BINS.centers
  assert BINS.num_bins == 313
  assert (c[:, 0].min(), c[:, 0].max(), c[:, 1].min(), c[:, 1].max()) == (-90, 100, -110, 100)
  assert np.all(np.mod(c, 10) == 0)
  assert len({tuple(x) for x in c.tolist()}) == 313


@pytest.mark.parametrize("half_width,count", [(9.5, 309), (10.5, 316)])
def test_half_width_changes_the_count(half_width, count):
  assert int(np.asarray(quantize.in_gamut_mask(quantize.grid_centers(), half_width)).sum()) == count


def test_in_gamut_rule_matches_exact_hull_separating_axis_test():
  """Oracle: scipy's exact hull of the gamut and the separating-axis theorem for polygon vs square."""
  pts = quantize._gamut_surface_ab().astype(np.float64)
  hull = pts[ConvexHull(pts).vertices]
  edges = np.roll(hull, -1, axis=0) - hull
  normals = np.stack([edges[:, 1], -edges[:, 0]], -1)
  axes = np.concatenate([normals / np.linalg.norm(normals, axis=1, keepdims=True), np.eye(2), -np.eye(2)])
  for step in (10.0, 12.0, 15.0):
    grid = quantize.grid_centers(step).astype(np.float64)
    separated = (grid @ axes.T - step * np.abs(axes).sum(1) > (hull @ axes.T).max(0)).any(1)
    bins = quantize.make_bins(step)
    np.testing.assert_array_equal(bins.centers, grid[~separated].astype(np.float32))


def test_other_steps_give_other_counts():
  counts = {s: quantize.make_bins(s).num_bins for s in (5.0, 12.0, 20.0)}
  assert counts[5.0] > 313 > counts[12.0] > counts[20.0]
  assert 150 <= quantize.make_bins(13.0).num_bins <= 250  # seed 004's "roughly 200 classes"


def test_grid_to_bin_table_is_consistent():
  ij = np.argwhere(BINS.grid_to_bin >= 0)
  idx = BINS.grid_to_bin[ij[:, 0], ij[:, 1]]
  np.testing.assert_array_equal(BINS.centers[idx], ij * BINS.step - BINS.extent)
  rebuilt = quantize.bins_from_centers(BINS.centers, BINS.step, BINS.extent)
  np.testing.assert_array_equal(rebuilt.grid_to_bin, BINS.grid_to_bin)
  with pytest.raises(ValueError, match="not points of the grid"):
    quantize.bins_from_centers(BINS.centers + 1.0, BINS.step, BINS.extent)


def _assert_same_encoding(ab):
  sparse, dense = _sparse(ab), _dense(ab)
  si, di = np.asarray(sparse.indices), np.asarray(dense.indices)
  # Same bins; the order may differ only between bins at equal distance up to float rounding.
  np.testing.assert_array_equal(np.sort(si, -1), np.sort(di, -1))
  order_differs = (si != di).any(-1)
  assert order_differs.mean() < 1e-3
  ds = quantize.to_dense(sparse, BINS.num_bins)
  dd = quantize.to_dense(dense, BINS.num_bins)
  np.testing.assert_allclose(ds, dd, atol=1e-6)
  np.testing.assert_allclose(np.asarray(sparse.weights).sum(-1), 1.0, atol=1e-6)


def test_sparse_equals_dense_on_whole_gamut_surface():
  _assert_same_encoding(quantize._gamut_surface_ab())  # every extreme sRGB color, 393k points


def test_sparse_equals_dense_on_random_colors_and_real_photo(shared_data):
  rgb = np.random.default_rng(0).integers(0, 256, (200_000, 3), dtype=np.uint8)
  _assert_same_encoding(color.rgb_to_lab(rgb)[:, 1:])
  import skimage.io
  photo = skimage.io.imread(shared_data / "eval" / "kodak24" / "kodim01.png")[..., :3]
  _assert_same_encoding(color.rgb_to_lab(photo)[..., 1:])


def test_encoding_shapes_and_nearest_first():
  ab = color.rgb_to_lab(np.random.default_rng(1).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8))[..., 1:]
  t = _sparse(ab)
  assert t.indices.shape == (2, 5, 7, 5) and t.indices.dtype == jnp.int32
  assert t.weights.shape == (2, 5, 7, 5) and t.weights.dtype == jnp.float32
  assert np.all(np.diff(np.asarray(t.weights), axis=-1) <= 1e-7)  # nearest bin has the largest weight
  d = np.linalg.norm(BINS.centers[np.asarray(t.indices)] - np.asarray(ab)[..., None, :], axis=-1)
  assert np.all(np.diff(d, axis=-1) >= -1e-4)


def test_weights_are_gaussian_of_distance():
  ab = jnp.array([[3.0, 4.0]])  # distances to (0,0), (10,0), (0,10), (10,10), ... are known
  t = quantize.soft_encode(ab, BINS, sigma=5.0)
  d2 = ((BINS.centers[np.asarray(t.indices[0])] - np.array([3.0, 4.0])) ** 2).sum(-1)
  expected = np.exp(-d2 / 50.0)
  np.testing.assert_allclose(t.weights[0], expected / expected.sum(), rtol=1e-5)
  assert tuple(BINS.centers[int(t.indices[0, 0])]) == (0.0, 0.0)


def test_far_out_of_gamut_ab_gives_valid_indices():
  t = quantize.soft_encode(jnp.array([[300.0, 300.0], [-105.0, 105.0]]), BINS)
  assert np.all((np.asarray(t.indices) >= 0) & (np.asarray(t.indices) < BINS.num_bins))
  assert np.isfinite(np.asarray(t.weights)).all()


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.uint8, (64, 3)))
def test_mean_decoding_of_soft_encoding_recovers_ab(rgb):
  ab = color.rgb_to_lab(rgb)[:, 1:]
  dist = quantize.to_dense(_sparse(ab), BINS.num_bins)
  logits = jnp.log(jnp.maximum(dist, 1e-30))  # softmax(logits) == dist
  decoded = quantize.decode(logits, BINS, "mean")
  err = np.linalg.norm(np.asarray(decoded) - np.asarray(ab), axis=-1)
  assert err.max() <= BINS.step / np.sqrt(2)  # within half a cell diagonal: the grid error


def test_decoding_modes():
  rng = np.random.default_rng(2)
  logits = jnp.asarray(rng.normal(size=(4, 6, BINS.num_bins)) * 3, jnp.float32)
  mode = quantize.decode(logits, BINS, "mode")
  np.testing.assert_array_equal(mode, BINS.centers[np.argmax(np.asarray(logits), -1)])
  mean = quantize.decode(logits, BINS, "mean")
  np.testing.assert_allclose(mean, jax.nn.softmax(logits, -1) @ BINS.centers, atol=1e-4)
  np.testing.assert_allclose(quantize.decode(logits, BINS, "annealed_mean", temperature=1.0), mean, atol=1e-4)
  cold = quantize.decode(logits, BINS, "annealed_mean", temperature=1e-3)
  np.testing.assert_allclose(cold, mode, atol=1e-3)
  t38 = quantize.decode(logits, BINS)  # default T = 0.38 sits between mean and mode in saturation
  sat = lambda ab: float(jnp.linalg.norm(ab, axis=-1).mean())
  assert sat(mean) < sat(t38) < sat(mode) + 1e-3
  with pytest.raises(ValueError, match="mode, mean, annealed_mean"):
    quantize.decode(logits, BINS, "median")
  with pytest.raises(ValueError, match="> 0"):
    quantize.decode(logits, BINS, "annealed_mean", temperature=0.0)


def test_encoding_is_jittable_and_batch_independent():
  ab = color.rgb_to_lab(np.random.default_rng(3).integers(0, 256, (3, 9, 11, 3), dtype=np.uint8))[..., 1:]
  full = _sparse(ab)
  part = quantize.soft_encode(ab[1:2], BINS, chunk=7)  # odd chunk size exercises padding
  np.testing.assert_array_equal(full.indices[1:2], part.indices)
  np.testing.assert_allclose(full.weights[1:2], part.weights, atol=1e-7)
