"""Shared model layers: the fast 2x2 blocks equal the flax modules they replace (values, params, gradients)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest


def test_deconv2x2_equals_flax_conv_transpose():
  """Same parameters from the same key, same outputs and gradients as nn.ConvTranspose 2x2 / stride 2 / VALID."""
  import flax.linen as nn
  from jaxcolor.models import layers
  x = jax.random.normal(jax.random.key(0), (2, 5, 3, 6))
  ours, ref = layers.Deconv2x2(4), nn.ConvTranspose(4, (2, 2), strides=(2, 2), padding="VALID")
  v_ours, v_ref = ours.init(jax.random.key(1), x), ref.init(jax.random.key(1), x)
  jax.tree.map(np.testing.assert_array_equal, v_ours, v_ref)
  v = {"params": {"kernel": jax.random.normal(jax.random.key(2), (2, 2, 6, 4)),
                  "bias": jax.random.normal(jax.random.key(3), (4,))}}
  np.testing.assert_allclose(ours.apply(v, x), ref.apply(v, x), rtol=1e-5, atol=1e-5)
  assert ours.apply(v, x).shape == (2, 10, 6, 4)
  loss = lambda m: (lambda v, x: jnp.sum(jnp.sin(m.apply(v, x))))
  g_ours, g_ref = jax.grad(loss(ours), (0, 1))(v, x), jax.grad(loss(ref), (0, 1))(v, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g_ours, g_ref)


def test_max_pool_2x2_equals_flax_max_pool():
  import flax.linen as nn
  from jaxcolor.models import layers
  x = jax.random.normal(jax.random.key(0), (2, 7, 5, 3))  # odd sizes: the last row / column dropped, as VALID
  ref = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  np.testing.assert_array_equal(layers.max_pool_2x2(x), ref(x))
  f = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * jnp.arange(1.0, 1 + 3 * 2 * 3 * 2).reshape(2, 3, 2, 3)))(x)
  np.testing.assert_array_equal(f(layers.max_pool_2x2), f(ref))  # no ties in random normals
  # Tied maxima share the window's gradient: it still sums to 1 per window, and only maxima get any.
  tied = jnp.zeros((1, 4, 4, 2)).at[0, 0, 0, 0].set(-1.0)
  g = jax.grad(lambda x: jnp.sum(layers.max_pool_2x2(x)))(tied)
  np.testing.assert_allclose(g.reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4)), 1.0)
  assert g[0, 0, 0, 0] == 0 and np.all(np.asarray(g) >= 0)


def test_max_pool_3x3_stride_2_equals_flax_max_pool():
  """The ResNet / Inception stems' pooling: values and (tie-free) gradients of nn.max_pool, odd and even sizes."""
  import flax.linen as nn
  from jaxcolor.models import layers
  for shape in [(2, 9, 8, 3), (1, 12, 7, 2)]:
    x = jax.random.normal(jax.random.key(shape[1]), shape)
    ref = lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
    ours = lambda x: layers.max_pool(x, 3, 2)
    np.testing.assert_array_equal(ours(x), ref(x))
    w = jax.random.normal(jax.random.key(7), ref(x).shape)
    f = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * w))(x)
    np.testing.assert_array_equal(f(ours), f(ref))


def test_max_pool_window_larger_than_the_map_fails_with_the_shape():
  from jaxcolor.models import layers
  with pytest.raises(ValueError, match=r"3x3 window does not fit a 2x5 feature map"):
    layers.max_pool(jnp.zeros((1, 2, 5, 4)), 3, 2)
  assert layers.max_pool(jnp.zeros((1, 3, 5, 4)), 3, 2).shape == (1, 1, 2, 4)
