"""sRGB <-> CIE Lab (D65 white, 2-degree observer) as jit-able, differentiable jnp ops.

The formulas and constants are those of scikit-image (`skimage.color.rgb2lab` / `lab2rgb`), so results agree
with it to float32 precision. Colorization works in Lab because L (lightness) is the input a grayscale photo
gives us and ab (chroma) is what the model predicts.

Conventions used everywhere in jaxcolor:
- RGB: uint8 in [0, 255] or float in [0, 1], channels last (..., 3).
- Lab: float32 (..., 3) with L in [0, 100] and a, b roughly in [-110, 110].
- Models see ab divided by `AB_SCALE` (110), so regression targets lie in about [-1, 1]; see `ab_to_unit`.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

Array = jnp.ndarray

AB_SCALE = 110.0  # ab / AB_SCALE is in [-1, 1] for every sRGB color (|a|, |b| < 108).
L_MAX = 100.0

# sRGB primaries -> XYZ (D65), and the D65 reference white, as in scikit-image.
_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=np.float64)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)

_F_THRESHOLD = 0.008856  # t above this uses the cube root, below it the linear segment.
_F_INV_THRESHOLD = 0.2068966  # 6 / 29: the same switch point on the f(t) side.
_LINEAR_SLOPE = 7.787
_LINEAR_OFFSET = 16.0 / 116.0


def to_float_rgb(rgb: Array) -> Array:
  """uint8 [0, 255] or float [0, 1] RGB -> float32 [0, 1]."""
  rgb = jnp.asarray(rgb)
  if rgb.dtype == jnp.uint8:
    return rgb.astype(jnp.float32) / 255.0
  return rgb.astype(jnp.float32)


def srgb_to_linear(c: Array) -> Array:
  """sRGB gamma expansion of values in [0, 1]."""
  c_safe = jnp.maximum(c, 0.04045)  # keeps the unused branch's gradient finite
  return jnp.where(c > 0.04045, ((c_safe + 0.055) / 1.055) ** 2.4, c / 12.92)


def linear_to_srgb(c: Array) -> Array:
  """sRGB gamma compression of linear values in [0, 1]."""
  c_safe = jnp.maximum(c, 0.0031308)
  return jnp.where(c > 0.0031308, 1.055 * c_safe ** (1.0 / 2.4) - 0.055, 12.92 * c)


def _f(t: Array) -> Array:
  t_safe = jnp.maximum(t, _F_THRESHOLD)  # cbrt has an infinite slope at 0
  return jnp.where(t > _F_THRESHOLD, jnp.cbrt(t_safe), _LINEAR_SLOPE * t + _LINEAR_OFFSET)


def _f_inv(f: Array) -> Array:
  return jnp.where(f > _F_INV_THRESHOLD, f ** 3, (f - _LINEAR_OFFSET) / _LINEAR_SLOPE)


def rgb_to_lab(rgb: Array) -> Array:
  """RGB (..., 3), uint8 or float in [0, 1] -> Lab (..., 3) float32."""
  linear = srgb_to_linear(to_float_rgb(rgb))
  xyz = linear @ jnp.asarray(_XYZ_FROM_RGB.T / _WHITE_D65[None, :], jnp.float32)  # normalized by white
  fx, fy, fz = _f(xyz[..., 0]), _f(xyz[..., 1]), _f(xyz[..., 2])
  return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_linear_rgb(lab: Array) -> Array:
  """Lab (..., 3) -> linear RGB, not clipped: a color is in the sRGB gamut iff all three lie in [0, 1]."""
  lab = jnp.asarray(lab, jnp.float32)
  fy = (lab[..., 0] + 16.0) / 116.0
  fx = fy + lab[..., 1] / 500.0
  fz = jnp.maximum(fy - lab[..., 2] / 200.0, 0.0)  # scikit-image clips negative z the same way
  xyz = jnp.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], axis=-1)
  return xyz @ jnp.asarray((_RGB_FROM_XYZ * _WHITE_D65[None, :]).T, jnp.float32)


def lab_to_rgb(lab: Array) -> Array:
  """Lab (..., 3) -> RGB float32 in [0, 1]; out-of-gamut colors are clipped, never NaN."""
  return linear_to_srgb(jnp.clip(lab_to_linear_rgb(lab), 0.0, 1.0))


def rgb_to_l_ab(rgb: Array) -> tuple[Array, Array]:
  """RGB (..., 3) -> (L (..., 1) in [0, 100], ab (..., 2) in Lab units): the model input and its target."""
  lab = rgb_to_lab(rgb)
  return lab[..., :1], lab[..., 1:]


def l_ab_to_rgb(l: Array, ab: Array) -> Array:
  """L (..., 1) and ab (..., 2), both in Lab units -> RGB in [0, 1]."""
  return lab_to_rgb(jnp.concatenate([jnp.asarray(l, jnp.float32), jnp.asarray(ab, jnp.float32)], -1))


def ab_to_unit(ab: Array, scale: float = AB_SCALE) -> Array:
  """ab in Lab units -> the model's regression space, ab / scale (about [-1, 1])."""
  return ab / scale


def unit_to_ab(ab_unit: Array, scale: float = AB_SCALE) -> Array:
  """Inverse of `ab_to_unit`."""
  return ab_unit * scale


def l_to_unit(l: Array) -> Array:
  """L in [0, 100] -> [-0.5, 0.5], the input scaling of Zhang et al.: (L - 50) / 100."""
  return (l - 50.0) / 100.0


def rgb_to_gray(rgb: Array) -> Array:
  """The grayscale (ab = 0) version of RGB (..., 3): what a black-and-white photo of it looks like, in [0, 1]."""
  l, ab = rgb_to_l_ab(rgb)
  return l_ab_to_rgb(l, jnp.zeros_like(ab))
