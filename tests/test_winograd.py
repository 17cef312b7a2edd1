"""winograd.conv3x3: forward, dX and dW equal XLA's conv in float64; the rule and the flax Conv routing."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.cpu import conv_grad, winograd
from test_conv_grad import float64_reference, grads as value_and_grads, plain, rel_err  # the conv tests' oracle


@pytest.mark.parametrize("x_shape,cout,padding,dilation", [
    ((2, 9, 10, 5), 6, ((1, 1), (1, 1)), 1),  # odd output: a partial last tile
    ((1, 8, 8, 3), 4, ((0, 0), (0, 0)), 1),  # VALID
    ((2, 7, 6, 4), 3, ((0, 2), (1, 0)), 1),  # asymmetric padding
    ((1, 11, 12, 4), 5, ((2, 2), (2, 2)), 2),  # eccv16's dilated convs
    ((2, 9, 7, 3), 2, ((2, 1), (0, 2)), 2),  # odd sizes: uneven phases
])
def test_matches_float64_reference(x_shape, cout, padding, dilation):
  rng = np.random.default_rng(0)
  x = rng.normal(size=x_shape)
  w = rng.normal(size=(3, 3, x_shape[-1], cout))
  g, ref = float64_reference(x, w, 1, padding, dilation)
  x32, w32, g32 = (jnp.asarray(a, jnp.float32) for a in (x, w, g))
  ours = value_and_grads(jax.jit(lambda a, b: winograd.conv3x3(a, b, padding, dilation)), x32, w32, g32)
  xla = value_and_grads(lambda a, b: plain(a, b, 1, padding, dilation), x32, w32, g32)
  for name, o, p, r in zip(("y", "dX", "dW"), ours, xla, ref):
    assert o.shape == r.shape and o.dtype == jnp.float32, name
    # float32 rounding of the transforms: within a few times XLA's own float32 error.
    assert rel_err(o, r) < max(5 * rel_err(p, r), 1e-6), (name, rel_err(o, r), rel_err(p, r))


def test_rule():
  big = dict(strides=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), dtype=jnp.float32)
  assert winograd.use_winograd((8, 22, 22, 512), (3, 3, 512, 512), **big)  # eccv16 blocks 4-7
  assert winograd.use_winograd((8, 22, 22, 512), (3, 3, 512, 512), **{**big, "dilation": (2, 2)})
  assert not winograd.use_winograd((8, 88, 88, 128), (3, 3, 128, 128), **big)  # break-even: XLA's
  assert not winograd.use_winograd((8, 44, 44, 128), (3, 3, 128, 256), **big)
  assert not winograd.use_winograd((8, 22, 22, 512), (3, 3, 512, 512), **{**big, "dtype": jnp.bfloat16})
  assert not winograd.use_winograd((8, 44, 44, 256), (3, 3, 256, 256), **{**big, "strides": (2, 2)})
  assert not winograd.use_winograd((8, 22, 22, 512), (1, 1, 512, 512), **big)
  assert not winograd.use_winograd((8, 22, 22, 512), (3, 3, 512, 512), **{**big, "dilation": (4, 4)})


def test_bad_input():
  with pytest.raises(ValueError, match="kernel"):
    winograd.conv3x3(jnp.ones((1, 8, 8, 4)), jnp.ones((5, 5, 4, 4)))
  with pytest.raises(ValueError, match="padding"):
    winograd.conv3x3(jnp.ones((1, 8, 8, 4)), jnp.ones((3, 3, 4, 4)), ((-1, 0), (0, 0)))


def test_flax_conv_routes_wide_convs():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 6, 5, 256)), jnp.float32)
  kwargs = dict(features=256, kernel_size=(3, 3), padding=((2, 2), (2, 2)), kernel_dilation=2)
  ref, ours = nn.Conv(**kwargs), conv_grad.Conv(**kwargs)
  params = ref.init(jax.random.key(0), x)
  jaxpr = str(jax.make_jaxpr(ours.apply)(params, x))
  assert "conv_general_dilated" not in jaxpr and "dot_general" in jaxpr
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-5, atol=1e-5)
  loss = lambda m: lambda p: jnp.sum(jnp.sin(m.apply(p, x)))
  for a, b in zip(jax.tree.leaves(jax.jit(jax.grad(loss(ours)))(params)), jax.tree.leaves(jax.grad(loss(ref))(params))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  conv_grad.set_cpu_paths(False)
  try:
    assert "conv_general_dilated" in str(jax.make_jaxpr(ours.apply)(params, x))  # rewrites off: XLA's conv
  finally:
    conv_grad.set_cpu_paths(True)
