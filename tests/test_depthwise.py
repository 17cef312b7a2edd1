"""cpu.depthwise: the shifted-sum depthwise conv and its gradients equal XLA's grouped conv (float64 oracle)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxcolor.cpu import conv_grad, depthwise

DIMS = ("NHWC", "HWIO", "NHWC")

# (x shape, kernel, stride, padding): EfficientNet's 3x3 / 5x5 at strides 1 and 2, odd sizes, explicit pads.
CASES = [
    ((2, 8, 8, 5), 3, 1, "SAME"),
    ((2, 9, 7, 4), 3, 2, "SAME"),
    ((3, 10, 10, 6), 5, 2, "SAME"),
    ((2, 11, 9, 3), 5, 1, "SAME"),
    ((2, 9, 9, 4), 3, 2, ((0, 2), (1, 1))),
    ((1, 6, 6, 2), 3, 1, "VALID"),
]


def lax_depthwise(x, w, stride, padding):
  return lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=DIMS,
                                  feature_group_count=x.shape[-1])


def explicit(padding, x_shape, k, stride):
  if isinstance(padding, str):
    return tuple(lax.padtype_to_pads(x_shape[1:3], (k, k), (stride, stride), padding))
  return padding


@pytest.mark.parametrize("x_shape,k,stride,padding", CASES)
def test_matches_float64_reference(x_shape, k, stride, padding):
  rng = np.random.default_rng(0)
  x, w = rng.normal(size=x_shape), rng.normal(size=(k, k, 1, x_shape[-1]))
  with jax.enable_x64(True):
    conv = lambda x_, w_: lax_depthwise(x_, w_, stride, padding)
    y64, vjp = jax.vjp(conv, jnp.asarray(x), jnp.asarray(w))
    g = rng.normal(size=y64.shape)
    ref = [np.asarray(y64), *(np.asarray(r) for r in vjp(jnp.asarray(g)))]
  pads = explicit(padding, x_shape, k, stride)
  ours_fn = jax.jit(lambda x_, w_: depthwise.depthwise_conv(x_, w_, (stride, stride), pads))
  x32, w32, g32 = (jnp.asarray(a, jnp.float32) for a in (x, w, g))
  y, vjp32 = jax.vjp(ours_fn, x32, w32)
  ours = [y, *vjp32(g32)]
  # Each value is a float32 sum of at most k*k (y, dX) or N*H*W (dW) unit-variance products: a relative error
  # of a few float32 epsilons times the sqrt of the sum's length, far under 1e-5 for these sizes.
  for name, o, r in zip(("y", "dX", "dW"), ours, ref):
    assert o.shape == r.shape and o.dtype == jnp.float32, name
    n = k * k if name != "dW" else int(np.prod(g.shape[:3]))
    tol = 8 * np.finfo(np.float32).eps * np.sqrt(n)
    assert np.abs(np.asarray(o, np.float64) - r).max() <= tol * np.abs(r).max(), name


def test_kernel_gradient_chunks_divide_the_batch():
  assert depthwise._chunk(32, 2**20) == 1  # one image exceeds the budget: one per chunk
  assert depthwise._chunk(32, 200 * 2**10) == 2  # 3 would fit, but does not divide 32
  assert depthwise._chunk(6, 1) == 6
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(6, 8, 8, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 1, 3)), jnp.float32)
  pads = ((1, 1), (1, 1))
  dw = lambda: jax.grad(lambda w_: jnp.sum(depthwise.depthwise_conv(x, w_, (1, 1), pads) ** 2))(w)
  whole = dw()
  budget = depthwise.CHUNK_BYTES
  try:
    depthwise.CHUNK_BYTES = 2 * 8 * 8 * 3 * 4  # two images per chunk: three chunks
    np.testing.assert_allclose(dw(), whole, rtol=1e-5)
  finally:
    depthwise.CHUNK_BYTES = budget


def test_conv_module_routes_depthwise_and_keeps_parameters():
  """conv_grad.Conv with feature_group_count = channels runs the shifted sum on CPU, same values and params."""
  x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 9, 9, 6)), jnp.float32)
  dw = conv_grad.Conv(6, (5, 5), strides=(2, 2), padding="SAME", feature_group_count=6, use_bias=False)
  params = dw.init(jax.random.key(0), x)
  plain = nn.Conv(6, (5, 5), strides=(2, 2), padding="SAME", feature_group_count=6, use_bias=False)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, plain.init(jax.random.key(0), x))
  text = jax.jit(lambda p: dw.apply(p, x)).lower(params).as_text()
  assert "feature_group_count = 6" not in text and "convolution" not in text  # no grouped conv left
  np.testing.assert_allclose(dw.apply(params, x), plain.apply(params, x), rtol=1e-5, atol=1e-5)
  previous = conv_grad.set_cpu_paths(False)
  try:
    assert "convolution" in jax.jit(lambda p: dw.apply(p, x)).lower(params).as_text()
  finally:
    conv_grad.set_cpu_paths(previous)


def test_rejects_non_depthwise_shapes():
  with pytest.raises(ValueError, match="depthwise_conv needs"):
    depthwise.depthwise_conv(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 3)), (1, 1), ((1, 1), (1, 1)))
