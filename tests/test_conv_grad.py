"""conv_grad.conv2d: forward equals lax conv; dX and dW equal the plain conv's gradients (float64 reference)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxcolor.cpu import conv_grad

DIMS = ("NHWC", "HWIO", "NHWC")

# (x shape, kernel hw, Cout, strides, padding, dilation)
CASES = [
    ((2, 9, 9, 3), (3, 3), 4, 1, "SAME", 1),
    ((2, 10, 9, 5), (3, 3), 6, 2, "SAME", 1),
    ((1, 11, 12, 4), (3, 3), 3, 1, ((2, 2), (2, 2)), 2),
    ((3, 13, 11, 2), (3, 3), 5, 2, ((1, 2), (0, 3)), 2),
    ((2, 8, 8, 3), (3, 2), 4, (1, 2), "VALID", (2, 1)),
    ((2, 7, 7, 4), (1, 1), 3, 1, "SAME", 1),
    ((2, 10, 10, 3), (4, 4), 2, 2, "SAME", 1),
]


def plain(x, w, strides, padding, dilation):
  strides = (strides,) * 2 if isinstance(strides, int) else strides
  dilation = (dilation,) * 2 if isinstance(dilation, int) else dilation
  return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation, dimension_numbers=DIMS)


def inputs(x_shape, khw, cout, dtype=np.float64, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=x_shape).astype(dtype)
  w = rng.normal(size=khw + (x_shape[-1], cout)).astype(dtype)
  return x, w


def grads(conv, x, w, g):
  """(y, dX, dW) of conv(x, w) with output cotangent g."""
  y, vjp = jax.vjp(conv, x, w)
  return (y,) + vjp(g)


def rel_err(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.abs(a - b).max() / np.abs(b).max()


def float64_reference(x, w, strides, padding, dilation=1, seed=1):
  """A random output cotangent g and [y, dX, dW] of XLA's conv in float64 (the oracle)."""
  with jax.enable_x64(True):
    conv = lambda x_, w_: plain(x_, w_, strides, padding, dilation)
    g = np.random.default_rng(seed).normal(size=conv(jnp.asarray(x), jnp.asarray(w)).shape)
    return g, [np.asarray(r) for r in grads(conv, jnp.asarray(x), jnp.asarray(w), jnp.asarray(g))]


@pytest.mark.parametrize("x_shape,khw,cout,strides,padding,dilation", CASES)
def test_matches_float64_reference(x_shape, khw, cout, strides, padding, dilation):
  x, w = inputs(x_shape, khw, cout)
  g, ref = float64_reference(x, w, strides, padding, dilation)
  x32, w32, g32 = (jnp.asarray(a, jnp.float32) for a in (x, w, g))
  # A small patch budget forces several batch chunks where the batch has more than one image.
  conv = jax.jit(lambda x_, w_: conv_grad.conv2d(x_, w_, strides, padding, dilation, max_patch_bytes=1))
  ours = grads(conv, x32, w32, g32)
  xla = grads(lambda x_, w_: plain(x_, w_, strides, padding, dilation), x32, w32, g32)
  for name, o, p, r in zip(("y", "dX", "dW"), ours, xla, ref):
    assert o.shape == r.shape and o.dtype == jnp.float32, name
    assert rel_err(o, r) < 2e-6, (name, rel_err(o, r), rel_err(p, r))
  np.testing.assert_array_equal(ours[0], xla[0])  # same forward computation
  np.testing.assert_array_equal(ours[1], xla[1])  # same dX computation


def test_chunking_does_not_change_dw():
  x, w = (jnp.asarray(a, jnp.float32) for a in inputs((5, 12, 12, 3), (3, 3), 4))
  g = jnp.asarray(np.random.default_rng(2).normal(size=(5, 12, 12, 4)), jnp.float32)
  pads = ((1, 1), (1, 1))
  one = conv_grad.patches_dw(x, g, (3, 3), (1, 1), pads, (1, 1))
  per_image = 12 * 12 * 9 * 3 * 4
  for budget in (1, 2 * per_image, 3 * per_image):  # chunks of 1, 2 (+1), 3 (+2) images
    np.testing.assert_allclose(conv_grad.patches_dw(x, g, (3, 3), (1, 1), pads, (1, 1), max_patch_bytes=budget),
                               one, rtol=1e-5, atol=1e-5)


def test_bfloat16_close_to_float32():
  x, w = inputs((2, 16, 16, 8), (3, 3), 8, np.float32)
  g = np.random.default_rng(3).normal(size=(2, 8, 8, 8)).astype(np.float32)
  conv = lambda x_, w_: conv_grad.conv2d(x_, w_, 2, "SAME", 1)
  y32, dx32, dw32 = grads(jax.jit(conv), jnp.asarray(x), jnp.asarray(w), jnp.asarray(g))
  y16, dx16, dw16 = grads(jax.jit(conv), *(jnp.asarray(a, jnp.bfloat16) for a in (x, w, g)))
  assert y16.dtype == dx16.dtype == dw16.dtype == jnp.bfloat16
  for a, b in ((y16, y32), (dx16, dx32), (dw16, dw32)):
    assert rel_err(a, b) < 2e-2
  # dW accumulates the 128 products per entry in float32: within bfloat16 rounding of the float32 product of
  # the same bfloat16-rounded inputs.
  xb, gb = (np.asarray(jnp.asarray(a, jnp.bfloat16), np.float32) for a in (x, g))
  exact = conv_grad.patches_dw(jnp.asarray(xb), jnp.asarray(gb), (3, 3), (2, 2), ((0, 1), (0, 1)), (1, 1))
  assert rel_err(dw16, exact) < 8e-3


def test_flax_conv_drop_in():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(8, 44, 44, 3)), jnp.float32)  # 8x22x22 outputs
  kwargs = dict(features=5, kernel_size=(3, 3), strides=2, padding=((1, 1), (1, 1)))
  ref, ours = nn.Conv(**kwargs), conv_grad.Conv(**kwargs)
  params = ref.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, params)
  assert params["params"]["kernel"].shape == (3, 3, 3, 5) and params["params"]["bias"].shape == (5,)
  assert conv_grad.use_patches_dw(x.shape, (3, 3, 3, 5), (2, 2), (1, 1))
  loss = lambda m: lambda p: jnp.sum(jnp.sin(m.apply(p, x)))
  assert "custom_vjp" in str(jax.make_jaxpr(ours.apply)(params, x))  # the rule routed it to conv2d
  np.testing.assert_array_equal(ours.apply(params, x), ref.apply(params, x))
  g_ref, g_ours = jax.grad(loss(ref))(params), jax.jit(jax.grad(loss(ours)))(params)
  # Each kernel / bias gradient sums n = 8 * 22 * 22 output positions; two float32 summation orders may differ
  # by about sqrt(n) roundings of the largest value (a fixed 1e-5 failed on another host: 3.7e-5 at |g| ~ 50).
  n = 8 * 22 * 22
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
    tol = 4 * np.finfo(np.float32).eps * np.sqrt(n) * np.abs(b).max()
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)


@pytest.mark.parametrize("x_shape,khw,strides,padding", [
    ((2, 10, 9, 5), (3, 3), 2, "SAME"), ((2, 12, 12, 4), (3, 3), 2, ((1, 1), (1, 1))),
    ((3, 13, 11, 2), (3, 3), 2, ((1, 2), (0, 3))), ((2, 9, 9, 3), (4, 2), (3, 2), "VALID"),
    ((1, 14, 14, 3), (7, 7), 2, ((3, 3), (3, 3)))])
def test_phases_dx_matches_float64_reference(x_shape, khw, strides, padding):
  x, w = inputs(x_shape, khw, 4, seed=5)
  s = (strides,) * 2 if isinstance(strides, int) else strides
  g, ref = float64_reference(x, w, s, padding, seed=6)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  conv = jax.jit(lambda x_, w_: conv_grad.conv2d(x_, w_, strides, padding, dw="xla", dx="phases"))
  ours = grads(conv, f32(x), f32(w), f32(g))
  for name, o, r in zip(("y", "dX", "dW"), ours, ref):
    assert o.shape == r.shape and rel_err(o, r) < 2e-6, (name, rel_err(o, r))
  dx_jaxpr = str(jax.make_jaxpr(jax.grad(lambda x_: jnp.sum(conv(x_, f32(w)))))(f32(x)))
  assert f"lhs_dilation=({s[0]}, {s[1]})" not in dx_jaxpr  # no conv over the zero-inserted gradient


def test_rule():
  assert conv_grad.use_patches_dw((8, 176, 176, 1), (3, 3, 1, 64))  # eccv16's first conv
  assert conv_grad.use_patches_dw((8, 224, 224, 3), (3, 3, 3, 64))  # VGG16's first conv
  assert not conv_grad.use_patches_dw((8, 88, 88, 64), (3, 3, 64, 128))  # the layer: XLA's is faster
  assert not conv_grad.use_patches_dw((8, 230, 230, 3), (7, 7, 3, 64), 2)  # ResNet stem: XLA's
  assert not conv_grad.use_patches_dw((8, 88, 88, 1), (1, 1, 1, 128))  # 1x1: already a matmul for XLA
  assert conv_grad.use_phases_dx((3, 3, 64, 64), 2) and not conv_grad.use_phases_dx((3, 3, 64, 64), 1)
  assert not conv_grad.use_phases_dx((1, 1, 64, 64), 2) and not conv_grad.use_phases_dx((3, 3, 64, 64), 2, 2)
  assert not conv_grad.use_phases_dx((7, 7, 3, 64), 2)  # ResNet's stem: few input channels, XLA's
  m = conv_grad.Conv(4, (3, 3))
  x = jnp.ones((2, 16, 16, 8))
  assert "custom_vjp" not in str(jax.make_jaxpr(lambda x_: m.apply(m.init(jax.random.key(0), x_), x_))(x))


@pytest.mark.parametrize("shape,k,s,padding,phased", [
    ((2, 22, 22, 16), 4, 2, "SAME", True), ((2, 9, 7, 8), 3, 2, "SAME", True), ((2, 8, 8, 4), 4, 2, "VALID", True),
    ((2, 10, 10, 4), 3, 1, "SAME", True), ((1, 5, 6, 3), 5, 3, "SAME", True),
    ((1, 4, 5, 3), 1, 2, "SAME", True),  # stride > kernel: phases that no tap reaches stay zero
    ((2, 6, 6, 4), 3, 2, "VALID", True)])  # output 13: not a multiple of the stride, the last row cropped
def test_conv_transpose_matches_flax(shape, k, s, padding, phased):
  x = jax.random.normal(jax.random.key(0), shape)
  ref = nn.ConvTranspose(6, (k, k), strides=(s, s), padding=padding)
  mine = conv_grad.ConvTranspose(6, (k, k), strides=(s, s), padding=padding)
  v = ref.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, mine.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, v)
  jaxpr = str(jax.make_jaxpr(mine.apply)(v, x))
  if s > 1:  # lax's conv_transpose is a conv over the zero-inserted input (lhs_dilation = strides)
    assert (f"lhs_dilation=({s}, {s})" not in jaxpr) == phased
  np.testing.assert_allclose(mine.apply(v, x), ref.apply(v, x), atol=1e-5)
  g_ref = jax.grad(lambda v: jnp.sum(ref.apply(v, x) ** 2))(v)
  g = jax.jit(jax.grad(lambda v: jnp.sum(mine.apply(v, x) ** 2)))(v)
  for name in ("kernel", "bias"):
    np.testing.assert_allclose(g["params"][name], g_ref["params"][name], rtol=1e-5, atol=1e-4)


def test_conv_transpose_2x2_stride_2_valid_is_two_matmuls():
  """unet's upsampling (`conv_grad.deconv2x2` on CPU): nn.ConvTranspose's parameters from the same key, its values
  and gradients, and no convolution left."""
  x = jax.random.normal(jax.random.key(0), (2, 5, 3, 6))
  ref = nn.ConvTranspose(4, (2, 2), strides=(2, 2), padding="VALID")
  mine = conv_grad.ConvTranspose(4, (2, 2), strides=(2, 2), padding="VALID")
  jax.tree.map(np.testing.assert_array_equal, mine.init(jax.random.key(1), x), ref.init(jax.random.key(1), x))
  v = {"params": {"kernel": jax.random.normal(jax.random.key(2), (2, 2, 6, 4)),
                  "bias": jax.random.normal(jax.random.key(3), (4,))}}
  assert "conv_general_dilated" not in str(jax.make_jaxpr(mine.apply)(v, x))
  assert mine.apply(v, x).shape == (2, 10, 6, 4)
  np.testing.assert_allclose(mine.apply(v, x), ref.apply(v, x), rtol=1e-5, atol=1e-5)
  loss = lambda m: (lambda v, x: jnp.sum(jnp.sin(m.apply(v, x))))
  g_mine, g_ref = jax.grad(loss(mine), (0, 1))(v, x), jax.grad(loss(ref), (0, 1))(v, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g_mine, g_ref)


@pytest.mark.parametrize("kwargs", [dict(kernel_dilation=(2, 2)), dict(transpose_kernel=True),
                                    dict(padding=((1, 2), (0, 1))), dict(padding="CIRCULAR")])
def test_conv_transpose_leaves_other_settings_to_flax(kwargs):
  """A drop-in for nn.ConvTranspose: what `conv_transpose` does not cover runs as flax's module, same values."""
  x = jax.random.normal(jax.random.key(0), (2, 6, 5, 3))
  ref = nn.ConvTranspose(4, (3, 3), strides=(2, 2), **kwargs)
  mine = conv_grad.ConvTranspose(4, (3, 3), strides=(2, 2), **kwargs)
  v = ref.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, mine.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, v)
  np.testing.assert_array_equal(mine.apply(v, x), ref.apply(v, x))


def test_conv_transpose_input_gradient():
  x = jax.random.normal(jax.random.key(0), (2, 7, 7, 5))
  w = jax.random.normal(jax.random.key(1), (4, 4, 5, 3))
  ref = lambda x: jnp.sum(jnp.sin(lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=DIMS)))
  mine = lambda x: jnp.sum(jnp.sin(conv_grad.conv_transpose(x, w, (2, 2), "SAME")))
  np.testing.assert_allclose(jax.grad(mine)(x), jax.grad(ref)(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,strides,padding", [
    ((2, 8, 8, 6), 1, "SAME"), ((2, 8, 8, 6), 2, "SAME"), ((2, 9, 7, 4), 2, "VALID"),
    ((1, 10, 11, 3), (3, 2), ((0, 0), (0, 0)))])
def test_1x1_conv_is_a_matmul_with_the_same_values_and_gradients(x_shape, strides, padding):
  """1x1 convs (heads, ResNet's bottlenecks and stride-2 shortcuts): flax Conv routes them to pointwise_dot;
  y, dX, dW equal float64 XLA's."""
  x, w = inputs(x_shape, (1, 1), 5, seed=8)
  s = (strides,) * 2 if isinstance(strides, int) else strides
  g, ref = float64_reference(x, w, s, padding, seed=9)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  m = conv_grad.Conv(5, (1, 1), strides=strides, padding=padding, use_bias=False)
  conv = jax.jit(lambda x_, w_: m.apply({"params": {"kernel": w_}}, x_))
  assert "dot_general" in str(jax.make_jaxpr(conv)(f32(x), f32(w)))
  assert "conv_general_dilated" not in str(jax.make_jaxpr(conv)(f32(x), f32(w)))
  for name, o, r in zip(("y", "dX", "dW"), grads(conv, f32(x), f32(w), f32(g)), ref):
    assert o.shape == r.shape and rel_err(o, r) < 2e-6, (name, rel_err(o, r))
  assert conv_grad.use_pointwise_dot((1, 1, 256, 512), ((0, 0), (0, 0)))
  assert not conv_grad.use_pointwise_dot((1, 1, 256, 512), ((1, 0), (0, 0)))  # padded: not a plain matmul
  assert not conv_grad.use_pointwise_dot((3, 3, 256, 512), ((0, 0), (0, 0)))
