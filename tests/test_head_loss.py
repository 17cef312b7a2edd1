"""The fused 1x1 head + cross-entropy: same loss and gradients as the projection followed by the plain loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import losses
from jaxcolor.colorspace import quantize
from jaxcolor.cpu import conv_grad
from jaxcolor.losses import head_loss
from jaxcolor.models import get_model

Q, K = 31, 5


def _problem(b=3, h=6, w=10, c=7, seed=0):
  rng = np.random.default_rng(seed)
  head = head_loss.HeadInput(jnp.asarray(rng.normal(size=(b, h, w, c)), jnp.float32),
                             jnp.asarray(rng.normal(size=(c, Q)), jnp.float32),
                             jnp.asarray(rng.normal(size=(Q,)), jnp.float32))
  idx = jnp.asarray(rng.integers(0, Q, (b, h, w, K)), jnp.int32)
  wts = jnp.asarray(rng.dirichlet(np.ones(K), (b, h, w)), jnp.float32)
  pixel_weights = jnp.asarray(rng.uniform(0.2, 3.0, (b, h, w)), jnp.float32)
  return head, quantize.SoftTarget(idx, wts), pixel_weights


def _plain(head, target, **kw):
  return losses.cross_entropy(head.logits(), target, **kw)


@pytest.mark.parametrize("chunk_rows,mask", [(1024, None), (12, "examples"), (5, "pixels")])
def test_fused_matches_plain_loss_and_gradients(monkeypatch, chunk_rows, mask):
  """Several chunk sizes (one chunk; 4 pixels of each image per chunk; 1), masks of examples or pixels,
  rebalancing weights; under jax.grad of 2.5 * loss, so the stored gradients are scaled by the incoming
  cotangent."""
  monkeypatch.setattr(head_loss, "CHUNK_ROWS", chunk_rows)
  head, target, pw = _problem()
  m = {None: None, "examples": jnp.asarray([1.0, 0.0, 1.0]),
       "pixels": jnp.asarray(np.random.default_rng(1).uniform(size=(3, 6, 10)) > 0.3, jnp.float32)}[mask]
  assert head_loss.use_fused(head)
  fused = lambda hd: 2.5 * losses.cross_entropy(hd, target, pixel_weights=pw, mask=m)
  plain = lambda hd: 2.5 * _plain(hd, target, pixel_weights=pw, mask=m)
  (lf, gf), (lp, gp) = jax.value_and_grad(fused)(head), jax.value_and_grad(plain)(head)
  np.testing.assert_allclose(lf, lp, rtol=1e-6)
  np.testing.assert_allclose(jax.jit(fused)(head), lp, rtol=1e-6)  # the primal (loss-only) loop
  for name in ("features", "kernel", "bias"):
    a, b = getattr(gf, name), getattr(gp, name)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * float(jnp.max(jnp.abs(b))), err_msg=name)
  if mask == "examples":
    assert float(jnp.max(jnp.abs(gf.features[1]))) == 0.0


def test_targets_of_another_resolution_fail_naming_the_shapes():
  head, target, _ = _problem()
  small = quantize.SoftTarget(target.indices[:, :3], target.weights[:, :3])
  with pytest.raises(ValueError, match=r"\(3, 3, 10, 5\).*features \(3, 6, 10, 7\)"):
    losses.cross_entropy(head, small)


def test_rows_per_image_divides_the_pixels():
  assert head_loss.rows_per_image(8, 224 * 224) == 128  # resnet50_unet: 392 chunks of 8 x 128 pixels
  assert head_loss.rows_per_image(32, 64 * 64) == 32
  assert head_loss.rows_per_image(8, 44 * 44) == 121  # eccv16's 1/4-resolution logits at 176
  assert head_loss.rows_per_image(4, 7 * 13) == 91
  assert head_loss.rows_per_image(1024, 5) == 1
  odd = head_loss.HeadInput(np.zeros((1, 2, 1031, 1)), np.zeros((1, Q)), np.zeros((Q,)))  # 2 x prime pixels
  assert head_loss.rows_per_image(1, 2 * 1031) == 2 and not head_loss.use_fused(odd)  # 1031 chunks: plain path


def test_deferred_head_hands_the_heads_input_to_the_loss():
  """Inside head_loss.deferred_head() a 1x1 classification head returns its input, kernel and bias (the model
  is not changed: same parameters, and the same logits from them); other heads, init, and the plain forms
  (CPU forms off, as on a GPU) are untouched."""
  model = get_model("unet", head="classification", features=(4, 8))
  l = 100 * jax.random.uniform(jax.random.key(1), (2, 16, 16, 1))
  v = model.init({"params": jax.random.key(0)}, l, train=False)
  with head_loss.deferred_head():
    out = model.apply(v, l, train=False)
    jax.tree.map(np.testing.assert_array_equal, v, model.init({"params": jax.random.key(0)}, l, train=False))
    reg = get_model("unet", head="regression", features=(4, 8))
    assert reg.apply(reg.init({"params": jax.random.key(0)}, l, train=False), l, train=False).shape == (2, 16, 16, 2)
    cnn = get_model("cnn_baseline", head="classification", features=(4, 8))  # a 3x3 head
    assert cnn.apply(cnn.init({"params": jax.random.key(0)}, l, train=False), l, train=False).shape[-1] == 313
  assert isinstance(out, head_loss.HeadInput) and out.features.shape == (2, 16, 16, 4)
  np.testing.assert_allclose(out.logits(), model.apply(v, l, train=False), rtol=1e-6, atol=1e-6)
  previous = conv_grad.set_cpu_paths(False)
  try:
    with head_loss.deferred_head():
      assert not isinstance(model.apply(v, l, train=False), head_loss.HeadInput)
  finally:
    conv_grad.set_cpu_paths(previous)