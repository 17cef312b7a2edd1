"""Zhang et al. 2017's user-guided network (jaxcolor/models/siggraph17.py): shapes, layers, hints as input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxcolor import hints, models
from jaxcolor.models import siggraph17


def test_layer_widths_and_resolutions_follow_the_paper():
  model = models.get_model("siggraph17")
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 1)), train=False))
  kernels = {k: v.shape for k, v in traverse_util.flatten_dict(shapes["params"], sep="/").items()
             if k.endswith("kernel")}
  assert kernels["conv1_1/kernel"] == (3, 3, 4, 64)  # L, hint ab, mask
  for block, channels, convs, _ in siggraph17.ENCODER:
    assert all(kernels[f"conv{block}_{i + 1}/kernel"][-1] == channels for i in range(convs))
  assert kernels["conv8_up/kernel"] == (4, 4, 512, 256) and kernels["conv8_short/kernel"] == (3, 3, 256, 256)
  assert kernels["conv10_short/kernel"] == (3, 3, 64, 128) and kernels["head/proj/kernel"] == (1, 1, 128, 2)
  n = sum(np.prod(x.shape) for x in jax.tree.leaves(shapes["params"]))
  assert 30e6 < n < 36e6  # about 34M: the paper's local-hints network


@pytest.mark.parametrize("head,channels", [("regression", 2), ("classification", 313)])
def test_full_resolution_output_and_hints_change_it(head, channels):
  model = models.get_model("siggraph17", width=1 / 16, head=head)
  l = jnp.linspace(0, 100, 2 * 32 * 32).reshape(2, 32, 32, 1)
  v = model.init(jax.random.key(0), l, train=False)
  out = model.apply(v, l, train=False)
  assert out.shape == (2, 32, 32, channels)
  np.testing.assert_array_equal(out, model.apply(v, l, train=False, hints=hints.no_hints(l)))
  ab = jax.random.uniform(jax.random.key(1), (2, 32, 32, 2), minval=-50, maxval=50)
  given = hints.HintSampler()(jax.random.key(2), ab, num_points=5)
  if head == "classification":  # the regression head starts at zero (gray), whatever its input
    assert not np.allclose(out, model.apply(v, l, train=False, hints=given))
  with pytest.raises(ValueError, match="divisible by 8"):
    model.init(jax.random.key(0), jnp.zeros((1, 20, 20, 1)), train=False)
