"""Per-example colorization metrics as jit-able jnp ops: PSNR, SSIM, AuC, colorfulness, ab errors.

Every metric takes a batch of predictions and ground truths and returns one value per example, shape (B,),
so an evaluator can sum them over batches and hosts and divide by the example count exactly. The optional
`mask` (B,) marks real examples; padded ones (mask False) get the value 0, never inf or NaN, so
`sum(values) / sum(mask)` is the mean over real examples.

Conventions:
- RGB images: (B, H, W, 3), uint8 in [0, 255] or float in [0, 1] (as `color.to_float_rgb`), data range 1.
  PSNR and SSIM are scale invariant, so they equal the 0-255 convention (data range 255) exactly.
- ab: (B, H, W, 2) in Lab units (a, b roughly in [-110, 110]).

Definitions (and their references):
- `psnr`: 10 log10(1 / MSE) over all pixels and channels of an example; +inf for identical images (as
  scikit-image's `peak_signal_noise_ratio`); evaluators cap it before averaging.
- `ssim`: Wang et al. 2004 with an 11-tap Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population
  covariances, per channel, averaged over the pixels at least 5 from every border and over channels: exactly
  scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=1, channel_axis=-1)`. Because that average skips the 5-pixel border, only "valid" windows are
  ever needed, so no padding mode enters the result.
- `auc_curve` / `auc` (Zhang et al. 2016): per pixel the Euclidean distance d in ab; f(t) = fraction of
  pixels with d <= t for the 151 integer thresholds t = 0..150; AuC = 100 / 150 * trapezoid integral of f
  over [0, 150] = 100 * (sum_t f(t) - (f(0) + f(150)) / 2) / 150. (The plain mean of the 151 values differs
  by under 0.4 points; we use the trapezoid.) Note f(0) counts only exact matches.
- `colorfulness` (Hasler and Suesstrunk 2003) on RGB scaled to [0, 255]: rg = R - G, yb = (R + G) / 2 - B,
  CF = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2), population std over the pixels.
  `delta_colorfulness` = |CF(gt) - CF(pred)| per example.
- `hue_sector_counts` / `balanced_hue_accuracy`: whether a model knows which hue a thing has, which PSNR and AuC
  do not tell from a tint (a constant sepia scores near gray on both). Of the pixels whose true chroma
  sqrt(a^2 + b^2) is >= 20, a pixel is right when its predicted chroma is >= 8 and its predicted hue
  atan2(b, a) lies within 45 degrees of the true hue. Pixels are counted per 60-degree sector of the true hue
  (six sectors from hue 0, the +a axis); the balanced accuracy is the mean over the sectors that hold pixels of
  hits / pixels there, so a constant tint scores only in the sectors it covers. Counts are summed over a
  dataset before the ratio (the evaluators do this); `hue_accuracy` is the plain ratio over all sectors.
- `ab_mae` / `ab_mse`: mean over pixels and both channels of |ab_pred - ab_gt| (squared), divided by `scale`
  (squared for MSE). scale 1: Lab units; scale `SEEDS_AB_SCALE` (128): the Keras seeds' normalization, where
  the models regressed ab / 128. (jaxcolor's own models use ab / 110, `color.AB_SCALE`.)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colorspace import color

Array = jnp.ndarray

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): scikit-image's Gaussian truncation at 3.5 sigma -> 11 taps
SSIM_K1 = 0.01
SSIM_K2 = 0.03
AUC_MAX_THRESHOLD = 150  # thresholds 0, 1, ..., 150 ab units
SEEDS_AB_SCALE = 128.0
HUE_TRUE_CHROMA = 20.0  # pixels judged: true chroma at least this
HUE_PRED_CHROMA = 8.0  # a prediction with less chroma is gray, never right
HUE_TOLERANCE_DEG = 45.0
HUE_SECTORS = 6  # of 60 degrees of the true hue


def _apply_mask(values: Array, mask: Array | None) -> Array:
  """values (B,) -> values where mask (B,) is True, else 0 (also replacing any inf / NaN there)."""
  if mask is None:
    return values
  return jnp.where(jnp.asarray(mask, bool), values, jnp.zeros_like(values))


def _rgb01(rgb: Array) -> Array:
  return color.to_float_rgb(rgb)  # (B, H, W, 3) float32 in [0, 1]


def mse(pred: Array, target: Array, mask: Array | None = None) -> Array:
  """Mean squared error per example over all trailing axes; inputs (B, ...) in the same units -> (B,)."""
  err = jnp.asarray(pred, jnp.float32) - jnp.asarray(target, jnp.float32)
  return _apply_mask(jnp.mean(err * err, axis=tuple(range(1, err.ndim))), mask)


def psnr(pred_rgb: Array, gt_rgb: Array, mask: Array | None = None) -> Array:
  """PSNR in dB per example of RGB (B, H, W, 3) with data range 1; +inf where the images are identical."""
  err = mse(_rgb01(pred_rgb), _rgb01(gt_rgb))
  return _apply_mask(-10.0 * jnp.log10(err), mask)  # log10(0) = -inf -> +inf dB


def _gaussian_taps(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> np.ndarray:
  """Normalized 1-D Gaussian kernel (2 radius + 1,), as scipy.ndimage builds it."""
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  w = np.exp(-0.5 * (x / sigma) ** 2)
  return (w / w.sum()).astype(np.float32)


def _valid_filter(z: Array, taps: np.ndarray) -> Array:
  """Separable 'valid' filtering of z (..., H, W, C) along H and W -> (..., H - 2r, W - 2r, C)."""
  n = len(taps)
  h, w = z.shape[-3], z.shape[-2]
  z = sum(float(t) * z[..., i:h - n + 1 + i, :, :] for i, t in enumerate(taps))
  return sum(float(t) * z[..., :, i:w - n + 1 + i, :] for i, t in enumerate(taps))


def ssim(pred_rgb: Array, gt_rgb: Array, mask: Array | None = None) -> Array:
  """Mean SSIM per example of RGB (B, H, W, 3), H, W >= 11; equals scikit-image's (see module doc)."""
  x, y = _rgb01(pred_rgb), _rgb01(gt_rgb)
  if min(x.shape[1], x.shape[2]) < 2 * SSIM_RADIUS + 1:
    raise ValueError(f"SSIM needs images of at least 11 x 11 pixels, got {x.shape[1:3]}")
  # Centre each example's channels first: variances are shift invariant, and the float32 cancellation in
  # E[x^2] - E[x]^2 shrinks with the magnitude of x.
  cx = jnp.mean(x, axis=(1, 2), keepdims=True)  # (B, 1, 1, 3)
  cy = jnp.mean(y, axis=(1, 2), keepdims=True)
  xc, yc = x - cx, y - cy
  stats = _valid_filter(jnp.stack([xc, yc, xc * xc, yc * yc, xc * yc]), _gaussian_taps())  # (5, B, h, w, 3)
  mx, my, mxx, myy, mxy = stats
  vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
  ux, uy = mx + cx, my + cy
  c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))  # (B, h, w, 3)
  return _apply_mask(jnp.mean(s, axis=(1, 2, 3)), mask)


def ab_distance(pred_ab: Array, gt_ab: Array) -> Array:
  """Per-pixel Euclidean distance in ab, (B, H, W, 2) each -> (B, H, W)."""
  diff = jnp.asarray(pred_ab, jnp.float32) - jnp.asarray(gt_ab, jnp.float32)
  return jnp.sqrt(jnp.sum(diff * diff, axis=-1))


def auc_curve(pred_ab: Array, gt_ab: Array, mask: Array | None = None,
              max_threshold: int = AUC_MAX_THRESHOLD) -> Array:
  """Fraction of pixels with ab distance <= t for t = 0..max_threshold: (B, max_threshold + 1).

  A pixel at distance d counts for every integer t >= ceil(d), so one histogram of ceil(d) and a cumulative
  sum give the whole curve without a (pixels x thresholds) comparison tensor.
  """
  d = ab_distance(pred_ab, gt_ab)
  b = d.shape[0]
  first = jnp.minimum(jnp.ceil(d), max_threshold + 1).astype(jnp.int32).reshape(b, -1)  # (B, P)
  counts = jax.vmap(lambda k: jnp.bincount(k, length=max_threshold + 2))(first)  # (B, T + 2)
  curve = jnp.cumsum(counts[:, :-1], axis=-1).astype(jnp.float32) / first.shape[1]
  if mask is None:
    return curve
  return jnp.where(jnp.asarray(mask, bool)[:, None], curve, 0.0)


def auc(pred_ab: Array, gt_ab: Array, mask: Array | None = None,
        max_threshold: int = AUC_MAX_THRESHOLD) -> Array:
  """AuC of Zhang et al. 2016 in [0, 100] per example: trapezoid area under `auc_curve`, normalized."""
  f = auc_curve(pred_ab, gt_ab, max_threshold=max_threshold)  # (B, T + 1)
  area = jnp.sum(f, axis=-1) - 0.5 * (f[:, 0] + f[:, -1])
  return _apply_mask(100.0 * area / max_threshold, mask)


def colorfulness(rgb: Array, mask: Array | None = None, eps: float = 0.0) -> Array:
  """Hasler-Suesstrunk colorfulness per example of RGB (B, H, W, 3), computed on the [0, 255] scale.

  `eps` inside the square roots keeps the gradient finite at a gray image (the loss term uses it)."""
  x = _rgb01(rgb) * 255.0
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  rg, yb = r - g, 0.5 * (r + g) - b  # (B, H, W)
  axes = (1, 2)
  m_rg, m_yb = jnp.mean(rg, axis=axes), jnp.mean(yb, axis=axes)
  var_rg = jnp.mean((rg - m_rg[:, None, None]) ** 2, axis=axes)
  var_yb = jnp.mean((yb - m_yb[:, None, None]) ** 2, axis=axes)
  cf = jnp.sqrt(var_rg + var_yb + eps) + 0.3 * jnp.sqrt(m_rg ** 2 + m_yb ** 2 + eps)
  return _apply_mask(cf, mask)


def delta_colorfulness(pred_rgb: Array, gt_rgb: Array, mask: Array | None = None) -> Array:
  """|CF(gt) - CF(pred)| per example, (B,)."""
  return _apply_mask(jnp.abs(colorfulness(gt_rgb) - colorfulness(pred_rgb)), mask)


def ab_mae(pred_ab: Array, gt_ab: Array, mask: Array | None = None, scale: float = 1.0) -> Array:
  """Mean |ab_pred - ab_gt| / scale per example over pixels and both channels; (B, H, W, 2) -> (B,)."""
  err = jnp.abs(jnp.asarray(pred_ab, jnp.float32) - jnp.asarray(gt_ab, jnp.float32)) / scale
  return _apply_mask(jnp.mean(err, axis=(1, 2, 3)), mask)


def ab_mse(pred_ab: Array, gt_ab: Array, mask: Array | None = None, scale: float = 1.0) -> Array:
  """Mean ((ab_pred - ab_gt) / scale)^2 per example over pixels and both channels; -> (B,)."""
  err = (jnp.asarray(pred_ab, jnp.float32) - jnp.asarray(gt_ab, jnp.float32)) / scale
  return _apply_mask(jnp.mean(err * err, axis=(1, 2, 3)), mask)


def hue_sector_counts(pred_ab: Array, gt_ab: Array, mask: Array | None = None) -> tuple[Array, Array]:
  """(hits, pixels) per example and true-hue sector, each (B, HUE_SECTORS) float32: of the pixels with true
  chroma >= HUE_TRUE_CHROMA in each 60-degree sector, how many are predicted with chroma >= HUE_PRED_CHROMA and
  a hue within HUE_TOLERANCE_DEG of the truth. ab (B, H, W, 2) in Lab units."""
  pred, gt = jnp.asarray(pred_ab, jnp.float32), jnp.asarray(gt_ab, jnp.float32)
  hue = lambda ab: jnp.degrees(jnp.arctan2(ab[..., 1], ab[..., 0]))  # (B, H, W) in (-180, 180]
  chroma = lambda ab: jnp.sqrt(jnp.sum(ab * ab, axis=-1))
  judged = chroma(gt) >= HUE_TRUE_CHROMA
  diff = jnp.abs((hue(pred) - hue(gt) + 180.0) % 360.0 - 180.0)  # angular difference in [0, 180]
  hit = judged & (chroma(pred) >= HUE_PRED_CHROMA) & (diff <= HUE_TOLERANCE_DEG)
  sector = jnp.minimum((hue(gt) % 360.0) // (360.0 / HUE_SECTORS), HUE_SECTORS - 1).astype(jnp.int32)
  onehot = jax.nn.one_hot(sector, HUE_SECTORS, dtype=jnp.float32)  # (B, H, W, S)
  hits = jnp.sum(onehot * hit[..., None], axis=(1, 2))
  pixels = jnp.sum(onehot * judged[..., None], axis=(1, 2))
  if mask is not None:
    keep = jnp.asarray(mask, bool)[:, None]
    hits, pixels = jnp.where(keep, hits, 0.0), jnp.where(keep, pixels, 0.0)
  return hits, pixels


def balanced_hue_accuracy(hits, pixels) -> float:
  """Mean over the sectors holding pixels of 100 * hits / pixels; hits, pixels (HUE_SECTORS,) summed over a
  dataset (or one example). NaN when no pixel is colored enough to judge."""
  hits, pixels = np.asarray(hits, np.float64), np.asarray(pixels, np.float64)
  present = pixels > 0
  return float(100.0 * np.mean(hits[present] / pixels[present])) if present.any() else float("nan")


def hue_accuracy(hits, pixels) -> float:
  """100 * all hits / all judged pixels (unbalanced: dominated by the warm hues most photos hold)."""
  total = float(np.sum(pixels))
  return 100.0 * float(np.sum(hits)) / total if total > 0 else float("nan")
