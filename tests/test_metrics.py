"""Metrics against independent implementations (scikit-image, numpy) on real photos and random data;
masks, identical images, and evaluator accumulation / registry."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxcolor import task as task_lib
from jaxcolor.colorspace import color, quantize
from jaxcolor.evaluation import evaluators, metrics

SIZE = (96, 64)  # PIL (width, height): photos are downscaled so the whole file runs in seconds


@pytest.fixture(scope="module")
def photos(shared_data) -> np.ndarray:
  """Three real photos (2 Kodak, 1 McMaster) as uint8 (3, 64, 96, 3)."""
  paths = [shared_data / "eval/kodak24/kodim01.png", shared_data / "eval/kodak24/kodim05.png",
           shared_data / "eval/mcmaster/1.png"]
  return np.stack([np.asarray(Image.open(p).convert("RGB").resize(SIZE, Image.BILINEAR)) for p in paths])


def _noisy(images: np.ndarray, seed: int = 0, sigma: float = 0.08) -> np.ndarray:
  """A float [0, 1] prediction: the photos plus clipped Gaussian noise."""
  rng = np.random.default_rng(seed)
  return np.clip(images / 255.0 + rng.normal(0, sigma, images.shape), 0, 1).astype(np.float32)


def _ab(images: np.ndarray) -> np.ndarray:
  return np.asarray(color.rgb_to_l_ab(images)[1], np.float64)  # (B, H, W, 2)


def _skimage_ssim(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> float:
  return structural_similarity(x, y, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False, data_range=data_range)


def _numpy_auc(pred_ab: np.ndarray, gt_ab: np.ndarray) -> np.ndarray:
  """Straight from the definition: compare every distance with every threshold, trapezoid, x 100 / 150."""
  d = np.sqrt(((pred_ab.astype(np.float64) - gt_ab) ** 2).sum(-1)).reshape(len(pred_ab), -1)
  t = np.arange(151)
  curve = (d[:, :, None] <= t).mean(1)  # (B, 151)
  return 100.0 * np.trapezoid(curve, t, axis=-1) / 150.0


def _numpy_colorfulness(rgb255: np.ndarray) -> np.ndarray:
  out = []
  for im in rgb255.astype(np.float64):
    r, g, b = im[..., 0], im[..., 1], im[..., 2]
    rg, yb = r - g, (r + g) / 2 - b
    out.append(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
  return np.array(out)


def test_psnr_matches_skimage_in_both_conventions(photos):
  pred = _noisy(photos)
  ours = np.asarray(jax.jit(metrics.psnr)(pred, photos))
  for i in range(len(photos)):
    ref = peak_signal_noise_ratio(photos[i] / 255.0, pred[i].astype(np.float64), data_range=1.0)
    np.testing.assert_allclose(ours[i], ref, atol=1e-3)
  # 0-255 convention on uint8 images: the same number.
  pred8 = np.round(pred * 255).astype(np.uint8)
  ours8 = np.asarray(metrics.psnr(pred8, photos))
  ref8 = [peak_signal_noise_ratio(photos[i], pred8[i], data_range=255) for i in range(len(photos))]
  np.testing.assert_allclose(ours8, ref8, atol=1e-3)


def test_ssim_matches_skimage_on_photos_and_noise(photos):
  rng = np.random.default_rng(1)
  cases = [(_noisy(photos), photos / 255.0),
           (np.asarray(color.rgb_to_gray(photos)), photos / 255.0),  # the grayscale baseline
           (rng.uniform(size=(2, 23, 31, 3)), rng.uniform(size=(2, 23, 31, 3)))]  # odd sizes, pure noise
  for pred, gt in cases:
    ours = np.asarray(jax.jit(metrics.ssim)(pred.astype(np.float32), gt.astype(np.float32)))
    ref = [_skimage_ssim(p.astype(np.float64), g.astype(np.float64)) for p, g in zip(pred, gt)]
    np.testing.assert_allclose(ours, ref, atol=1e-5)
  # uint8 inputs, skimage with data_range 255: SSIM is scale invariant, so identical.
  pred8 = np.round(_noisy(photos, seed=2) * 255).astype(np.uint8)
  ref8 = [_skimage_ssim(p, g, data_range=255) for p, g in zip(pred8, photos)]
  np.testing.assert_allclose(metrics.ssim(pred8, photos), ref8, atol=1e-5)


def test_ssim_rejects_small_images():
  with pytest.raises(ValueError, match="11 x 11"):
    metrics.ssim(jnp.zeros((1, 10, 20, 3)), jnp.zeros((1, 10, 20, 3)))


def test_auc_matches_numpy(photos):
  gt_ab = _ab(photos)
  rng = np.random.default_rng(3)
  preds = [np.zeros_like(gt_ab),  # grayscale
           _ab(np.round(_noisy(photos) * 255).astype(np.uint8)),
           rng.uniform(-100, 100, gt_ab.shape)]  # distances up to beyond 150
  for pred in preds:
    ours = np.asarray(jax.jit(metrics.auc)(pred.astype(np.float32), gt_ab.astype(np.float32)))
    np.testing.assert_allclose(ours, _numpy_auc(pred, gt_ab), atol=1e-3)


def test_auc_hand_computed_and_curve():
  # four pixels at ab distances 0, 0.5, 10 and 200
  gt = jnp.zeros((1, 1, 4, 2))
  pred = jnp.array([[[[0.0, 0.0], [0.3, 0.4], [6.0, 8.0], [200.0, 0.0]]]])
  curve = np.asarray(jax.jit(metrics.auc_curve)(pred, gt))[0]
  assert curve.shape == (151,)
  np.testing.assert_allclose(curve[[0, 1, 9, 10, 150]], [0.25, 0.5, 0.5, 0.75, 0.75])
  # trapezoid: 0.25..0.5 on [0, 1], 0.5 on [1, 10) up to t = 9, 0.5 -> 0.75 on [9, 10], 0.75 after
  area = 0.375 + 8 * 0.5 + 0.625 + 140 * 0.75
  np.testing.assert_allclose(jax.jit(metrics.auc)(pred, gt), [100 * area / 150], rtol=1e-6)


def test_colorfulness_matches_numpy(photos):
  pred = _noisy(photos)
  np.testing.assert_allclose(jax.jit(metrics.colorfulness)(photos), _numpy_colorfulness(photos), rtol=1e-5)
  np.testing.assert_allclose(metrics.colorfulness(pred), _numpy_colorfulness(pred * 255.0), rtol=1e-5)
  np.testing.assert_allclose(metrics.delta_colorfulness(pred, photos),
                             np.abs(_numpy_colorfulness(photos) - _numpy_colorfulness(pred * 255.0)),
                             rtol=1e-4, atol=1e-4)
  assert np.all(np.asarray(metrics.colorfulness(color.rgb_to_gray(photos))) < 0.05)


def test_ab_errors_match_numpy(photos):
  gt_ab = _ab(photos)
  pred = gt_ab + np.random.default_rng(4).normal(0, 7, gt_ab.shape)
  f32 = lambda x: x.astype(np.float32)
  for scale in (1.0, metrics.SEEDS_AB_SCALE):
    err = (pred - gt_ab) / scale
    np.testing.assert_allclose(metrics.ab_mae(f32(pred), f32(gt_ab), scale=scale),
                               np.abs(err).mean((1, 2, 3)), rtol=1e-4)
    np.testing.assert_allclose(metrics.ab_mse(f32(pred), f32(gt_ab), scale=scale),
                               (err ** 2).mean((1, 2, 3)), rtol=1e-4)


def test_identical_images(photos):
  ab = _ab(photos).astype(np.float32)
  assert np.all(np.isposinf(metrics.psnr(photos, photos)))  # documented: +inf, like scikit-image
  np.testing.assert_allclose(metrics.ssim(photos, photos), 1.0, atol=1e-6)
  np.testing.assert_allclose(metrics.auc(ab, ab), 100.0, atol=1e-4)
  np.testing.assert_allclose(metrics.delta_colorfulness(photos, photos), 0.0, atol=1e-6)
  np.testing.assert_allclose(metrics.ab_mae(ab, ab), 0.0)


def test_masks_zero_padded_examples(photos):
  gt = np.concatenate([photos, np.zeros_like(photos[:2])])  # two all-black padding examples
  pred = np.concatenate([_noisy(photos), np.zeros((2,) + photos.shape[1:], np.float32)])
  mask = np.array([True, True, True, False, False])
  gt_ab, pred_ab = _ab(gt).astype(np.float32), _ab(np.round(pred * 255).astype(np.uint8)).astype(np.float32)

  @jax.jit
  def all_metrics(m):  # one compilation for every metric
    return {"psnr": metrics.psnr(pred, gt, m), "ssim": metrics.ssim(pred, gt, m),
            "auc": metrics.auc(pred_ab, gt_ab, m), "cf": metrics.colorfulness(pred, m),
            "dcf": metrics.delta_colorfulness(pred, gt, m), "mae": metrics.ab_mae(pred_ab, gt_ab, m),
            "mse": metrics.ab_mse(pred_ab, gt_ab, m), "curve": metrics.auc_curve(pred_ab, gt_ab, m)}

  masked, unmasked = all_metrics(mask), all_metrics(np.ones(5, bool))
  for name in masked:
    assert np.all(np.asarray(masked[name])[3:] == 0), name  # padding: exactly 0, not inf or NaN
    np.testing.assert_array_equal(masked[name][:3], unmasked[name][:3], err_msg=name)
  assert np.isposinf(unmasked["psnr"][3])  # what the mask hides: identical black images


def _batches(images: np.ndarray, sizes: list[int], pad_to: int) -> list[dict]:
  """Splits images into batches of the given sizes, each padded (mask False) to pad_to examples."""
  out, start = [], 0
  for n in sizes:
    part = images[start:start + n]
    start += n
    pad = np.zeros((pad_to - n,) + images.shape[1:], images.dtype)
    out.append({"image": np.concatenate([part, pad]), "mask": np.arange(pad_to) < n})
  return out


@jax.jit
def _fake_predict(images):
  """A deterministic, image-dependent 'model' (jitted, as the trainer's): ground-truth ab damped, shifted."""
  _, ab = color.rgb_to_l_ab(images)
  return 0.6 * ab + 3.0


def _numpy_hue_counts(pred_ab: np.ndarray, gt_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Straight from the definition, pixel by pixel in degrees (float64): hits and judged pixels per sector."""
  hits, pixels = np.zeros(6), np.zeros(6)
  for (pa, pb), (ga, gb) in zip(pred_ab.reshape(-1, 2).astype(np.float64), gt_ab.reshape(-1, 2)):
    if np.hypot(ga, gb) < 20:
      continue
    true_hue = np.degrees(np.arctan2(gb, ga)) % 360
    sector = int(true_hue // 60)
    pixels[sector] += 1
    diff = abs(np.degrees(np.arctan2(pb, pa)) % 360 - true_hue)
    hits[sector] += np.hypot(pa, pb) >= 8 and min(diff, 360 - diff) <= 45
  return hits, pixels


def test_hue_accuracy_matches_numpy(photos):
  gt = _ab(photos)
  rng = np.random.default_rng(3)
  preds = {"noisy": gt + rng.normal(0, 25, gt.shape), "damped": 0.3 * gt, "tint": np.broadcast_to([6.0, 16.0], gt.shape)}
  for name, pred in preds.items():
    hits, pixels = metrics.hue_sector_counts(jnp.asarray(pred, jnp.float32), jnp.asarray(gt, jnp.float32))
    ref_hits, ref_pixels = _numpy_hue_counts(pred, gt)
    # float32 vs float64 angles may flip pixels sitting exactly on a boundary: allow a handful
    assert np.abs(np.sum(hits, 0) - ref_hits).max() <= 3 and np.abs(np.sum(pixels, 0) - ref_pixels).max() <= 3, name
    ref = 100 * np.mean([h / n for h, n in zip(ref_hits, ref_pixels) if n > 0])
    np.testing.assert_allclose(metrics.balanced_hue_accuracy(np.sum(hits, 0), np.sum(pixels, 0)), ref, atol=0.1)
  # halved colors keep their hue (and chroma >= 10 > 8): all right; a constant warm tint only in its own sectors
  damped = metrics.hue_sector_counts(0.5 * jnp.asarray(gt, jnp.float32), jnp.asarray(gt, jnp.float32))
  tint = metrics.hue_sector_counts(jnp.asarray(preds["tint"], jnp.float32), jnp.asarray(gt, jnp.float32))
  assert metrics.balanced_hue_accuracy(*np.sum(damped, 1)) == 100
  hits, pixels = np.sum(tint, 1)
  tint_hue = np.degrees(np.arctan2(16, 6))  # 69 degrees: sector 1
  assert hits[1] == pixels[1] > 0 or hits[1] / pixels[1] > 0.5
  assert all(hits[s] == 0 for s in (3, 4, 5)) and 40 < tint_hue < 90


def test_hue_accuracy_hand_computed():
  """Four judged pixels, one per sector 0, 1, 2, 3: right hue, gray, 50 degrees off, right but faint."""
  gt = np.array([[30.0, 5.0], [10.0, 40.0], [-30.0, 10.0], [-30.0, -10.0]])
  pred = np.array([[20.0, 8.0], [1.0, 2.0], [-20.0, -15.0], [-5.0, -2.0]])
  hits, pixels = metrics.hue_sector_counts(jnp.asarray(pred[None, None]), jnp.asarray(gt[None, None]),
                                           mask=jnp.ones(1, bool))
  np.testing.assert_array_equal(pixels[0], [1, 1, 1, 1, 0, 0])
  np.testing.assert_array_equal(hits[0], [1, 0, 0, 0, 0, 0])  # gray, >45 degrees off, chroma 5.4 < 8
  assert metrics.balanced_hue_accuracy(hits[0], pixels[0]) == 25.0
  assert metrics.hue_accuracy(hits[0], pixels[0]) == 25.0
  assert np.isnan(metrics.balanced_hue_accuracy(np.zeros(6), np.zeros(6)))
  masked = metrics.hue_sector_counts(jnp.asarray(pred[None, None]), jnp.asarray(gt[None, None]),
                                     mask=jnp.zeros(1, bool))
  assert float(jnp.sum(masked[1])) == 0


def test_evaluator_batches_equal_one_big_batch(photos):
  images = np.concatenate([photos, photos[:, ::-1]])  # 6 examples
  ev = evaluators.get_evaluator("color_metrics")
  big = dict(ev.run(_fake_predict, [{"image": images, "mask": np.ones(6, bool)}]))
  small = dict(ev.run(_fake_predict, _batches(images, [3, 2, 1], pad_to=3)))  # one compile: same shapes
  assert big["num_examples"] == small["num_examples"] == 6
  assert big.keys() == small.keys()
  for k in big:
    np.testing.assert_allclose(small[k], big[k], rtol=1e-5, atol=1e-5, err_msg=k)
  # the means are those of the per-example metrics, here scikit-image's on the 8-bit prediction
  to_rgb = jax.jit(lambda im: color.l_ab_to_rgb(color.rgb_to_l_ab(im)[0], _fake_predict(im)))
  pred8 = np.round(np.asarray(to_rgb(images), np.float64) * 255).astype(np.uint8)
  np.testing.assert_allclose(big["ssim"], np.mean([_skimage_ssim(p, g, 255) for p, g in zip(pred8, images)]),
                             rtol=1e-5)
  np.testing.assert_allclose(big["psnr"], np.mean([peak_signal_noise_ratio(g, p, data_range=255)
                                                   for p, g in zip(pred8, images)]), rtol=1e-5)
  np.testing.assert_allclose(big["delta_colorfulness_of_means"],
                             abs(big["colorfulness_gt"] - big["colorfulness"]), rtol=1e-6)
  # the grayscale baseline equals a model that predicts ab = 0
  zero = dict(ev.run(lambda im: jnp.zeros(im.shape[:3] + (2,)), _batches(images, [1, 3, 2], pad_to=3)))
  for k in ("psnr", "ssim", "auc", "colorfulness", "ab_mae", "ab_mse_128"):
    np.testing.assert_allclose(zero[k], big["gray/" + k], rtol=1e-5, err_msg=k)
  assert 75 < big["gray/auc"] < 95 and big["gray/colorfulness"] < 0.5 < big["colorfulness_gt"]
  assert big["psnr"] > big["gray/psnr"] and big["auc"] > big["gray/auc"]
  # the tint baseline equals a model that predicts ab = (6, 16) everywhere
  tint = dict(ev.run(lambda im: jnp.broadcast_to(jnp.asarray(evaluators.BASELINES["tint"]), im.shape[:3] + (2,)),
                     _batches(images, [2, 2, 2], pad_to=3)))
  for k in ("psnr", "auc", "colorfulness", "ab_mae", "hue_accuracy_balanced", "hue_accuracy"):
    np.testing.assert_allclose(tint[k], big["tint/" + k], rtol=1e-5, err_msg=k)
  assert big["gray/hue_accuracy_balanced"] == 0 and not any("_hue" in k for k in big)


def test_evaluator_identical_prediction_caps_psnr(photos):
  ev = evaluators.ColorMetrics(psnr_cap_db=60.0, grayscale_baseline=False)
  exact = jax.jit(lambda im: color.rgb_to_l_ab(im)[1])
  res = dict(ev.run(exact, [{"image": photos}]))  # no mask key: all examples count
  assert res["num_examples"] == 3 and "gray/psnr" not in res
  assert 40 < res["psnr"] <= 60.0  # 8-bit rounding of the round trip leaves only tiny errors
  np.testing.assert_allclose(res["ssim"], 1.0, atol=1e-3)
  # ab computed eagerly vs under jit differ by float rounding (~1e-6): then only the t = 0 point of the
  # curve (exact matches) is lost, worth 100 * 0.5 / 150 = 0.33 at most.
  assert 100.0 - 1 / 3 - 1e-3 <= res["auc"] <= 100.0


def test_evaluator_scores_low_resolution_ab_decoded_by_the_task(photos):
  """Logits at 1/4 of the photo (Zhang's output) decoded by the task's one decoder, then upsampled by the
  evaluator, score as the constant ab they decode to; anything but ab (B, h, w, 2) is refused."""
  bins = quantize.make_bins()
  target = [30.0, -20.0]
  idx = int(np.argmin(((bins.centers - target) ** 2).sum(-1)))
  task = task_lib.ColorTask(head="classification", bins=bins, decoding="mode")
  logits = lambda im: 50.0 * jax.nn.one_hot(jnp.full((im.shape[0], 16, 24), idx), bins.num_bins)
  constant = lambda im: jnp.broadcast_to(jnp.asarray(target), im.shape[:3] + (2,))
  ev = evaluators.get_evaluator("color_metrics", grayscale_baseline=False)
  from_logits = dict(ev.run(lambda im: task.decode(logits(im)), [{"image": photos}]))
  from_ab = dict(ev.run(constant, [{"image": photos}]))
  for k in from_ab:
    np.testing.assert_allclose(from_logits[k], from_ab[k], rtol=1e-5, err_msg=k)
  with pytest.raises(ValueError, match=r"takes predicted ab \(B, h, w, 2\)"):
    list(ev.run(logits, [{"image": photos}]))


def test_registry_errors():
  with pytest.raises(ValueError, match="color_metrics"):
    evaluators.get_evaluator("no_such_metric")
  with pytest.raises(ValueError, match="does not take"):
    evaluators.get_evaluator("color_metrics", temprature=0.4)
