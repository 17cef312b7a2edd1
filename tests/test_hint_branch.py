"""Color hints in encoder-decoders (jaxcolor/models/hint_branch.py): a zero start, the summaries, the wiring."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxcolor import hints, models
from jaxcolor.models import hint_branch

TINY = {
    "efficientnet_unet": dict(variant="lite0", encoder_width=0.25, encoder_depth=0.3, decoder_features=(8, 8, 8, 8)),
    "resnet50_unet": dict(encoder_width=1 / 16, encoder_stages=(1, 1, 1, 1), decoder_features=(8, 8, 8, 8, 8),
                          finetune_encoder_bn=True),
}


def _hints(batch, size, seed=3):
  ab = jax.random.uniform(jax.random.key(seed), (batch, size, size, 2), minval=-60, maxval=60)
  return hints.HintSampler(patch_sizes=(1, 3, 5))(jax.random.key(seed + 1), ab, num_points=6)


def test_summary_is_the_mean_hinted_ab_per_cell_and_a_flag():
  h = np.zeros((1, 8, 8, 3), np.float32)
  h[0, 1, 1] = [0.2, -0.4, 1]
  h[0, 2, 3] = [0.6, 0.0, 1]  # same 4x4 cell as (1, 1)
  out = np.asarray(hint_branch.summarize(jnp.asarray(h), 4))
  np.testing.assert_allclose(out[0, 0, 0], [0.4, -0.2, 1.0], rtol=1e-6)
  assert np.all(out[0, 1] == 0) and np.all(out[0, :, 1] == 0)


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_guided_model_starts_as_its_automatic_self_and_keeps_its_parameter_tree(name):
  l = jnp.linspace(0, 100, 2 * 64 * 64).reshape(2, 64, 64, 1)
  auto = models.get_model(name, **TINY[name])
  guided = models.get_model(name, guided=True, **TINY[name])
  assert guided.takes_hints and not auto.takes_hints
  va, vg = auto.init(jax.random.key(0), l, train=False), guided.init(jax.random.key(0), l, train=False)
  fa, fg = (traverse_util.flatten_dict(v, sep="/") for v in (va, vg))
  added = set(fg) - set(fa)
  assert added and all(k.startswith("params/hints/") for k in added) and set(fa) <= set(fg)
  # The automatic model's variables + a fresh branch: the same outputs, whatever the hints (init_from a
  # shipped automatic model starts exactly there).
  merged = traverse_util.unflatten_dict({k: fa.get(k, v) for k, v in fg.items()}, sep="/")
  expected = auto.apply(va, l, train=False)
  for given in (None, _hints(2, 64)):
    np.testing.assert_array_equal(guided.apply(merged, l, train=False, hints=given), expected)
  with pytest.raises(ValueError, match="guided=True"):
    auto.apply(va, l, train=False, hints=_hints(2, 64))


@pytest.mark.parametrize("name", sorted(TINY))
def test_once_trained_the_branch_makes_hints_change_the_output_near_them(name):
  """Non-zero branch and head weights (as after training): a hint changes the output, most near it."""
  l = jnp.full((1, 64, 64, 1), 50.0)
  guided = models.get_model(name, guided=True, **TINY[name])
  v = guided.init(jax.random.key(0), l, train=False)
  v = jax.tree_util.tree_map_with_path(
      lambda path, x: x + 0.3 * jax.random.normal(jax.random.key(len(path)), x.shape)
      if any(k in jax.tree_util.keystr(path) for k in ("'hints'", "'head'")) else x, v)
  h = hints.paint(*(jnp.asarray([[x]]) for x in (8, 8, 3, 3)), jnp.asarray([[[40.0, -40.0]]]),
                  jnp.asarray([[True]]), (64, 64))
  diff = np.abs(np.asarray(guided.apply(v, l, train=False, hints=h) - guided.apply(v, l, train=False)))[0].sum(-1)
  s = diff.shape[0] // 8  # output cells of the 8x8 px region around the hint
  assert diff.max() > 0 and diff[:2 * s, :2 * s].mean() > diff[-2 * s:, -2 * s:].mean()
