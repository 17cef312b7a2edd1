"""`merge`: host bilinear resize == jax.image.resize, chunked merge == one program over the photo, few compiles."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxcolor.colorspace import color
from jaxcolor.inference import merge


def _l(rgb):
  return np.asarray(color.rgb_to_l_ab(np.asarray(rgb))[0])


@pytest.mark.parametrize("small, size", [((16, 16), (40, 56)), ((64, 64), (427, 470)), ((32, 32), (20, 8)),
                                         ((64, 48), (64, 48)), ((64, 64), (13, 300)), ((8, 8), (8, 9))])
def test_resize_ab_matches_jax_image_resize(small, size):
  ab = np.random.default_rng(0).uniform(-100, 100, small + (2,)).astype(np.float32)
  got = merge.resize_ab(ab, *size)
  want = np.asarray(jax.image.resize(ab, size + (2,), "bilinear"))
  assert got.shape == want.shape and got.dtype == np.float32
  # JAX's float32 sample coordinates round (up to 3e-5 px at 64); neighbours here differ by up to 200 ab units
  np.testing.assert_allclose(got, want, atol=3e-3)
  assert np.abs(got - want).mean() < 3e-4  # a half-pixel shift would give ~10


def test_taps_are_the_matrix():
  for n_in, n_out in ((16, 40), (64, 13), (7, 7), (5, 300)):
    dense = merge.bilinear_matrix(n_in, n_out)
    idx, w = merge._taps(dense)
    rebuilt = np.zeros_like(dense)
    np.add.at(rebuilt, (np.arange(n_out)[:, None], idx), w)
    np.testing.assert_array_equal(rebuilt, dense)
    if n_out > n_in:
      assert idx.shape[1] == 2  # upsampling: two taps per output, the band that keeps resize_ab cheap


@pytest.mark.parametrize("shape", [(40, 56), (7, 300)])
def test_chunked_merge_equals_one_program_over_the_photo(monkeypatch, shape):
  """Bands of rows and padded chunks (tiny sizes here: several of each) change no pixel."""
  monkeypatch.setattr(merge, "CHUNK_SIZES", (64, 256))
  rng = np.random.default_rng(1)
  rgb = rng.integers(0, 256, shape + (3,), np.uint8)
  ab = rng.uniform(-60, 60, (16, 16, 2)).astype(np.float32)
  got = merge.merge(rgb, ab)
  ab_full = merge.resize_ab(ab, *shape)
  want = np.asarray(merge.merge_pixels(rgb.reshape(-1, 3), ab_full.reshape(-1, 2))).reshape(rgb.shape)
  np.testing.assert_array_equal(got, want)


def test_merge_matches_the_jax_resize_path(shared_data):
  """Against a whole-photo jnp reference (jax.image.resize, no chunks): equal but for rare pixels where the
  resize's rounding flips a gamut bisection step (measured: 45 of 750,000 channel values, by 1 or 2 levels)."""
  rgb = np.asarray(Image.open(shared_data / "eval" / "kodak24" / "kodim23.png").convert("RGB"))
  ab = np.random.default_rng(2).uniform(-40, 40, (32, 32, 2)).astype(np.float32)
  got = merge.merge(rgb, ab)
  ab_full = jax.image.resize(jnp.asarray(ab), rgb.shape[:2] + (2,), "bilinear")
  want = np.asarray(merge.merge_pixels(rgb.reshape(-1, 3), ab_full.reshape(-1, 2))).reshape(rgb.shape)
  diff = np.abs(got.astype(int) - want)
  assert diff.max() <= 3 and (diff > 0).mean() < 1e-3


def test_photos_of_many_sizes_compile_once_per_chunk_size():
  merge.merge_pixels._clear_cache()
  rng = np.random.default_rng(3)
  ab = rng.uniform(-30, 30, (16, 16, 2)).astype(np.float32)
  for shape in ((30, 40), (50, 70), (64, 64), (33, 17), (70, 80)):  # 1,200 ... 5,600 pixels
    out = merge.merge(rng.integers(0, 256, shape + (3,), np.uint8), ab)
    assert out.shape == shape + (3,)
  assert merge.merge_pixels._cache_size() == 2  # chunks of 4,096 and 16,384 pixels, not five programs


def test_merge_keeps_lightness_for_out_of_gamut_predictions(shared_data):
  rgb = np.asarray(Image.open(shared_data / "eval" / "kodak24" / "kodim05.png").convert("RGB"))
  ab = np.random.default_rng(0).uniform(-100, 100, (16, 16, 2)).astype(np.float32)  # mostly out of gamut
  out = merge.merge(rgb, ab)
  assert out.shape == rgb.shape and out.dtype == np.uint8
  assert np.abs(_l(out) - _l(rgb)).max() < 0.3  # only the uint8 rounding remains
  assert np.abs(np.asarray(color.rgb_to_l_ab(out)[1])).mean() > 10  # and the colors are still there


def test_chunk_size():
  assert merge.chunk_size(1) == merge.CHUNK_SIZES[0]
  assert merge.chunk_size(4097) == 16384
  assert merge.chunk_size(10 ** 9) == merge.CHUNK_SIZES[-1]
