"""Shared model layers: parameter names with either conv module, and max pooling by the CPU kernel equal to
nn.max_pool (values, gradients)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest


@pytest.mark.parametrize("cpu", [False, True])
def test_conv_blocks_name_their_conv_as_flax_does(cpu):
  """ConvBN / UpConvBN with flax's convs or the CPU kernels: the auto-named "Conv_0" / "ConvTranspose_0" that
  checkpoints and the shipped models hold."""
  import flax.linen as nn
  from jaxcolor.cpu import conv_grad
  from jaxcolor.models import layers
  conv, up = (conv_grad.Conv, conv_grad.ConvTranspose) if cpu else (nn.Conv, nn.ConvTranspose)
  x = jnp.zeros((1, 4, 4, 3))
  init = lambda m: jax.eval_shape(lambda: m.init(jax.random.key(0), x, train=False))
  shapes = lambda m: jax.tree.map(lambda a: a.shape, init(m))
  assert shapes(layers.ConvBN(5, conv=conv))["params"]["Conv_0"] == {"kernel": (3, 3, 3, 5)}
  up_params = shapes(layers.UpConvBN(5, use_bn=False, conv=up))["params"]
  assert up_params == {"ConvTranspose_0": {"kernel": (3, 3, 3, 5), "bias": (5,)}}


def test_max_pool_2x2_equals_flax_max_pool():
  """`max_pool_2x2` by the CPU kernel (`jaxcolor.cpu.kernels.max_pool`) and by its default, nn.max_pool."""
  import flax.linen as nn
  from jaxcolor.cpu import kernels
  from jaxcolor.models import layers
  x = jax.random.normal(jax.random.key(0), (2, 7, 5, 3))  # odd sizes: the last row / column dropped, as VALID
  ref = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  ours = lambda x: layers.max_pool_2x2(x, kernels.max_pool)
  assert "reduce_window" not in str(jax.make_jaxpr(ours)(x))
  for pool in (ours, layers.max_pool_2x2):
    np.testing.assert_array_equal(pool(x), ref(x))
  f = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * jnp.arange(1.0, 1 + 3 * 2 * 3 * 2).reshape(2, 3, 2, 3)))(x)
  np.testing.assert_array_equal(f(ours), f(ref))  # no ties in random normals
  # Tied maxima share the window's gradient: it still sums to 1 per window, and only maxima get any.
  tied = jnp.zeros((1, 4, 4, 2)).at[0, 0, 0, 0].set(-1.0)
  g = jax.grad(lambda x: jnp.sum(ours(x)))(tied)
  np.testing.assert_allclose(g.reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4)), 1.0)
  assert g[0, 0, 0, 0] == 0 and np.all(np.asarray(g) >= 0)


def test_max_pool_3x3_stride_2_equals_flax_max_pool():
  """The ResNet / Inception stems' pooling: values and (tie-free) gradients of nn.max_pool, odd and even sizes."""
  import flax.linen as nn
  from jaxcolor.cpu import kernels
  from jaxcolor.models import layers
  for shape in [(2, 9, 8, 3), (1, 12, 7, 2)]:
    x = jax.random.normal(jax.random.key(shape[1]), shape)
    ref = lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
    ours = lambda x: layers.max_pool(x, 3, 2, kernels.max_pool)
    np.testing.assert_array_equal(ours(x), ref(x))
    w = jax.random.normal(jax.random.key(7), ref(x).shape)
    f = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * w))(x)
    np.testing.assert_array_equal(f(ours), f(ref))


def test_max_pool_window_larger_than_the_map_fails_with_the_shape():
  from jaxcolor.models import layers
  with pytest.raises(ValueError, match=r"3x3 window does not fit a 2x5 feature map"):
    layers.max_pool(jnp.zeros((1, 2, 5, 4)), 3, 2)
  assert layers.max_pool(jnp.zeros((1, 3, 5, 4)), 3, 2).shape == (1, 1, 2, 4)
