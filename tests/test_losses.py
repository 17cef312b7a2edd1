"""Losses: tiny hand-computed values, masks and weights, gradients by finite differences, the registry."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxcolor import losses
from jaxcolor.colorspace import quantize


def test_regression_losses_hand_computed():
  pred = jnp.array([[[[0.1, -0.2], [0.0, 0.5]]]])  # (1, 1, 2, 2)
  target = jnp.array([[[[0.0, 0.0], [0.3, 0.1]]]])
  # per-pixel errors: (0.1, -0.2) and (-0.3, 0.4)
  np.testing.assert_allclose(losses.l2(pred, target), ((0.01 + 0.04) / 2 + (0.09 + 0.16) / 2) / 2, rtol=1e-6)
  np.testing.assert_allclose(losses.l1(pred, target), ((0.1 + 0.2) / 2 + (0.3 + 0.4) / 2) / 2, rtol=1e-6)
  # huber with delta 0.25: 0.1, 0.2 quadratic; 0.3, 0.4 linear: 0.25 * (e - 0.125)
  h = ((0.005 + 0.02) / 2 + (0.25 * 0.175 + 0.25 * 0.275) / 2) / 2
  np.testing.assert_allclose(losses.huber(pred, target, delta=0.25), h, rtol=1e-6)


def test_cross_entropy_hand_computed():
  logits = jnp.log(jnp.array([[[[0.5, 0.25, 0.25]]]]))  # softmax = (0.5, 0.25, 0.25)
  target = quantize.SoftTarget(jnp.array([[[[0, 2]]]]), jnp.array([[[[0.75, 0.25]]]]))
  expected = -(0.75 * np.log(0.5) + 0.25 * np.log(0.25))
  np.testing.assert_allclose(losses.cross_entropy(logits, target), expected, rtol=1e-6)


def test_sparse_cross_entropy_equals_dense_formula():
  rng = np.random.default_rng(0)
  bins = quantize.make_bins()
  ab = jnp.asarray(rng.uniform(-40, 40, (2, 4, 4, 2)), jnp.float32)
  target = quantize.soft_encode(ab, bins)
  logits = jnp.asarray(rng.normal(size=(2, 4, 4, bins.num_bins)), jnp.float32)
  dense = -(quantize.to_dense(target, bins.num_bins) * jax.nn.log_softmax(logits)).sum(-1).mean()
  np.testing.assert_allclose(losses.cross_entropy(logits, target), dense, rtol=1e-5)


def test_mask_and_pixel_weights():
  pred = jnp.zeros((2, 1, 2, 2))
  target = jnp.stack([jnp.ones((1, 2, 2)), 3 * jnp.ones((1, 2, 2))])  # example 1 has error 1, example 2 has 3
  np.testing.assert_allclose(losses.l1(pred, target, mask=jnp.array([True, False])), 1.0)
  np.testing.assert_allclose(losses.l1(pred, target, mask=jnp.array([False, True])), 3.0)
  pixel_mask = jnp.array([[[True, False]], [[False, False]]])
  np.testing.assert_allclose(losses.l1(pred, target, mask=pixel_mask), 1.0)
  w = jnp.array([[[2.0, 0.0]], [[0.0, 0.0]]])
  np.testing.assert_allclose(losses.l1(pred, target, pixel_weights=w), 2.0 / 4)
  np.testing.assert_allclose(losses.l1(pred, target, mask=jnp.zeros(2, bool)), 0.0)  # no valid pixel: 0, not NaN


@pytest.mark.parametrize("name", ["l2", "l1", "huber"])
def test_regression_gradients_match_finite_differences(name):
  rng = np.random.default_rng(1)
  pred = jnp.asarray(rng.normal(size=(2, 3, 3, 2)) * 0.3, jnp.float32)
  target = jnp.asarray(rng.normal(size=(2, 3, 3, 2)) * 0.3, jnp.float32)
  w = jnp.asarray(rng.uniform(0.5, 2, (2, 3, 3)), jnp.float32)
  fn = losses.get_loss(name)
  check_grads(lambda p: fn(p, target, pixel_weights=w), (pred,), order=1, modes=("rev",), eps=1e-3,
              atol=1e-2, rtol=1e-2)


def test_cross_entropy_gradient_matches_finite_differences_and_softmax_minus_target():
  rng = np.random.default_rng(2)
  bins = quantize.make_bins()
  target = quantize.soft_encode(jnp.asarray(rng.uniform(-30, 30, (1, 2, 2, 2)), jnp.float32), bins)
  logits = jnp.asarray(rng.normal(size=(1, 2, 2, bins.num_bins)), jnp.float32)
  check_grads(lambda z: losses.cross_entropy(z, target), (logits,), order=1, modes=("rev",), eps=1e-2,
              atol=1e-2, rtol=1e-2)
  g = jax.grad(losses.cross_entropy)(logits, target)
  expected = (jax.nn.softmax(logits) - quantize.to_dense(target, bins.num_bins)) / 4  # mean over 4 pixels
  np.testing.assert_allclose(g, expected, atol=1e-6)


def test_registry_and_errors():
  assert {"l1", "l2", "huber", "cross_entropy", "l1_decoded", "l2_decoded", "colorfulness"} <= set(losses.LOSSES)
  assert losses.loss_spec("cross_entropy").head == "classification"
  assert {losses.loss_spec(n).head for n in ("l1", "l2", "huber")} == {"regression"}
  with pytest.raises(ValueError, match="colorfulness, cross_entropy, huber, l1, l1_decoded"):
    losses.get_loss("focal")
  with pytest.raises(ValueError, match="does not take"):
    losses.get_loss("l2", delta=1.0)
  huber = losses.get_loss("huber", delta=0.5)
  assert float(huber(jnp.ones((1, 1, 1, 2)), jnp.zeros((1, 1, 1, 2)))) == pytest.approx(0.5 * 0.5 + 0.5 * 0.0 + 0.125)


def test_bfloat16_predictions_are_accepted():
  pred = jnp.full((1, 2, 2, 2), 0.5, jnp.bfloat16)
  out = losses.l2(pred, jnp.zeros((1, 2, 2, 2)))
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, 0.25)
