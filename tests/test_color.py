"""jaxcolor.colorspace.color against scikit-image, on the RGB cube and real photos, plus round trips and gradients."""
import warnings

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.color
import skimage.io
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jaxcolor.colorspace import color

_rgb_to_lab = jax.jit(color.rgb_to_lab)
_lab_to_rgb = jax.jit(color.lab_to_rgb)


def _cube(steps: int) -> np.ndarray:
  g = np.linspace(0.0, 1.0, steps)
  return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)


def test_rgb_to_lab_matches_skimage_on_dense_cube():
  rgb = _cube(41)  # 68,921 colors, includes every corner and edge of the cube
  np.testing.assert_allclose(_rgb_to_lab(rgb.astype(np.float32)), skimage.color.rgb2lab(rgb), atol=1e-3, rtol=0)


def test_uint8_and_float_inputs_agree():
  rgb8 = np.random.default_rng(0).integers(0, 256, (1000, 3), dtype=np.uint8)
  np.testing.assert_allclose(_rgb_to_lab(rgb8), _rgb_to_lab((rgb8 / 255.0).astype(np.float32)), atol=1e-4)
  np.testing.assert_allclose(_rgb_to_lab(rgb8), skimage.color.rgb2lab(rgb8), atol=1e-3, rtol=0)


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
  lab = np.random.default_rng(1).uniform([0, -128, -128], [100, 128, 128], (50_000, 3))
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # scikit-image warns about the negative Z values it clips
    ref = skimage.color.lab2rgb(lab)
  out = np.asarray(_lab_to_rgb(lab.astype(np.float32)))
  assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
  np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", ["kodak24", "mcmaster"])
def test_real_photos_match_skimage(shared_data, folder):
  paths = sorted((shared_data / "eval" / folder).glob("*.png"))[:4]
  assert paths, f"no photos in {folder}"
  for path in paths:
    rgb = skimage.io.imread(path)[..., :3]
    ref = skimage.color.rgb2lab(rgb)
    lab = np.asarray(_rgb_to_lab(rgb))
    np.testing.assert_allclose(lab, ref, atol=1e-3, rtol=0, err_msg=str(path))
    back = np.asarray(_lab_to_rgb(lab))
    np.testing.assert_allclose(back * 255.0, rgb.astype(np.float32), atol=0.05, err_msg=str(path))


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float32, (16, 3), elements=st.floats(0.0, 1.0, width=32)))
def test_rgb_lab_rgb_round_trip(rgb):
  np.testing.assert_allclose(_lab_to_rgb(_rgb_to_lab(rgb)), rgb, atol=2e-4)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float32, (16, 3), elements=st.floats(-1e3, 1e3, width=32)))
def test_lab_to_rgb_never_nan_and_in_range(lab):
  out = np.asarray(_lab_to_rgb(lab))
  assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_gradients_are_finite_everywhere():
  rgb = jnp.asarray(_cube(9), jnp.float32)  # includes 0 and 1, where the piecewise formulas switch
  g = jax.grad(lambda x: jnp.sum(color.rgb_to_lab(x) ** 2))(rgb)
  assert np.isfinite(np.asarray(g)).all()
  lab = jnp.asarray([[0.0, 0.0, 0.0], [50.0, 200.0, -200.0], [100.0, 0.0, 0.0], [8.0, 1.0, 1.0]])
  g = jax.grad(lambda x: jnp.sum(color.lab_to_rgb(x)))(lab)
  assert np.isfinite(np.asarray(g)).all()


def test_rgb_to_lab_gradient_matches_finite_differences():
  rgb = jnp.asarray([[0.2, 0.5, 0.7], [0.9, 0.1, 0.3]], jnp.float32)
  check_grads(color.rgb_to_lab, (rgb,), order=1, modes=("rev",), atol=0.05, rtol=0.02, eps=1e-3)


def test_normalization_helpers():
  rgb = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
  l, ab = color.rgb_to_l_ab(rgb)
  assert l.shape == (8, 8, 1) and ab.shape == (8, 8, 2)
  assert float(l.min()) >= 0.0 and float(l.max()) <= 100.0
  np.testing.assert_allclose(color.unit_to_ab(color.ab_to_unit(ab)), ab, atol=1e-4)
  assert float(jnp.abs(color.ab_to_unit(ab)).max()) <= 1.0
  np.testing.assert_allclose(color.l_to_unit(jnp.array([0.0, 50.0, 100.0])), [-0.5, 0.0, 0.5])
  np.testing.assert_allclose(color.l_ab_to_rgb(l, ab) * 255, rgb, atol=0.05)
  gray = np.asarray(color.rgb_to_gray(rgb))
  np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-4)  # ab = 0 is neutral grey (to the 1e-5 mismatch of the D65 constants)
  np.testing.assert_allclose(gray[..., 1], gray[..., 2], atol=1e-4)
