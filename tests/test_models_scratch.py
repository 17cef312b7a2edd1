"""Tests for the from-scratch models (cnn_baseline, autoencoder, unet, eccv16) and the shared layers.

Models run at tiny widths on 16x16 / 32x32 inputs so the file stays fast on CPU; full-size models are only
traced with `jax.eval_shape`, which allocates nothing.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.models import MODELS, get_model
from jaxcolor.models.layers import AB_SCALE, NUM_AB_BINS, OutputHead

HEADS = ("regression", "classification")
TINY_BINS = 13  # a small, odd bin count shows that num_bins reaches the head
# name -> (constructor kwargs of a tiny variant, input side)
TINY = {
    "cnn_baseline": (dict(features=(4, 8)), 16),
    "autoencoder": (dict(features=(4, 4, 8, 8)), 16),
    "unet": (dict(features=(4, 8, 16)), 16),
    "eccv16": (dict(width=1 / 32), 32),
}
SCRATCH = tuple(TINY)


def _key(seed: int) -> jax.Array:
  """An "rbg" PRNG key: on CPU a jitted init with the default threefry keys spends about a second compiling
  each parameter's random draw (20 s for tiny eccv16), rbg keys about a fifth of that."""
  return jax.random.key(seed, impl="rbg")


def _channels(head: str, num_bins: int) -> int:
  return num_bins if head == "classification" else 2


def _l_batch(side: int, batch: int = 2, seed: int = 0) -> jax.Array:
  """Random L in [0, 100], shape (batch, side, side, 1)."""
  return jax.random.uniform(jax.random.key(seed), (batch, side, side, 1), minval=0.0, maxval=100.0)


def _tiny(name: str, head: str, **overrides) -> nn.Module:
  kwargs, _ = TINY[name]
  return get_model(name, head=head, num_bins=TINY_BINS, **{**kwargs, **overrides})


@functools.cache
def _tiny_variables(name: str, head: str) -> dict:
  """Variables of the tiny float32 model, initialized under jit (shared by the tests below)."""
  side = TINY[name][1]
  model = _tiny(name, head)
  return jax.jit(functools.partial(model.init, train=False))(_key(1), jnp.zeros((1, side, side, 1)))


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_registry_lists_scratch_models():
  assert set(SCRATCH) <= set(MODELS)
  for name in SCRATCH:
    assert isinstance(MODELS[name].output_stride, int) and isinstance(MODELS[name].default_size, int)


def test_unknown_model_lists_known_names():
  with pytest.raises(ValueError, match="unknown model 'nope'") as err:
    get_model("nope")
  for name in SCRATCH:
    assert name in str(err.value)


@pytest.mark.parametrize("name", SCRATCH)
def test_unknown_head_lists_choices(name):
  with pytest.raises(ValueError, match="regression, classification"):
    get_model(name, head="softmax")


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", SCRATCH)
def test_tiny_model_jit_apply_shapes(name, head):
  side = TINY[name][1]
  model = _tiny(name, head)
  variables = _tiny_variables(name, head)
  assert set(variables) == {"params", "batch_stats"}
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
  out = jax.jit(functools.partial(model.apply, train=False))(variables, _l_batch(side))
  h = side // model.output_stride
  assert out.shape == (2, h, h, _channels(head, TINY_BINS))
  assert out.dtype == jnp.float32
  assert np.isfinite(np.asarray(out)).all()
  if head == "regression":  # ab / AB_SCALE through tanh
    assert np.abs(np.asarray(out)).max() <= 1.0


@pytest.mark.parametrize("name", SCRATCH)
def test_batchnorm_train_mode_updates_batch_stats(name):
  side = TINY[name][1]
  model = _tiny(name, "regression")
  variables = _tiny_variables(name, "regression")
  apply = jax.jit(functools.partial(model.apply, train=True, mutable=["batch_stats"]))
  out, updates = apply(variables, _l_batch(side, batch=4, seed=2))
  assert out.shape[0] == 4 and out.dtype == jnp.float32
  old, new = variables["batch_stats"], updates["batch_stats"]
  assert jax.tree.structure(old) == jax.tree.structure(new)
  changed = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new))]
  assert all(changed), "every BatchNorm layer should move its running statistics in train mode"


@pytest.mark.parametrize("name", SCRATCH)
def test_bfloat16_compute_close_to_float32(name):
  side = TINY[name][1]
  variables = _tiny_variables(name, "classification")  # float32 params serve both compute dtypes
  l = _l_batch(side, seed=3)
  ref = jax.jit(functools.partial(_tiny(name, "classification").apply, train=False))(variables, l)
  low_model = _tiny(name, "classification", dtype=jnp.bfloat16)
  low_fn = functools.partial(low_model.apply, train=False)
  assert "bf16[" in str(jax.make_jaxpr(low_fn)(variables, l)), "the body should compute in bfloat16"
  low = jax.jit(low_fn)(variables, l)
  assert low.dtype == jnp.float32 and np.isfinite(np.asarray(low)).all()
  scale = float(np.abs(np.asarray(ref)).max())
  np.testing.assert_allclose(np.asarray(low), np.asarray(ref), atol=0.05 * scale + 1e-3)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", SCRATCH)
def test_full_size_output_shapes(name, head):
  model = get_model(name, head=head)
  side = model.default_size
  out, _ = jax.eval_shape(
      lambda: model.init_with_output(jax.random.key(0), jnp.zeros((1, side, side, 1)), train=False))
  h = side // model.output_stride
  assert out.shape == (1, h, h, _channels(head, NUM_AB_BINS)) and out.dtype == jnp.float32


def _eccv16_param_count_by_hand(num_outputs: int) -> int:
  """Zhang's released ECCV16 network: conv weights + biases, BatchNorm scale + offset after blocks 1-7."""
  conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
  blocks = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3), (512, 3), (512, 3)]  # (channels, convs)
  total, cin = 0, 1
  for channels, convs in blocks:
    for _ in range(convs):
      total += conv(3, cin, channels)
      cin = channels
    total += 2 * channels  # BatchNorm
  total += conv(4, 512, 256) + 2 * conv(3, 256, 256)  # block 8: transposed conv + two convs, no BatchNorm
  return total + conv(1, 256, num_outputs)


def test_eccv16_full_size_parameter_count():
  assert _eccv16_param_count_by_hand(313) == 32_235_385  # "about 32.2M" (docs/zhang2016.md)
  for head, outputs in (("classification", 313), ("regression", 2)):
    model = get_model("eccv16", head=head)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 176, 176, 1)), train=False))
    assert _count(variables["params"]) == _eccv16_param_count_by_hand(outputs)
    assert _count(variables["batch_stats"]) == 2 * (64 + 128 + 256 + 4 * 512)  # mean and var per BN channel


def test_autoencoder_rgb_target_in_unit_interval():
  model = _tiny("autoencoder", "regression", target="rgb")
  side = TINY["autoencoder"][1]
  l = _l_batch(side, seed=4)
  variables = jax.jit(functools.partial(model.init, train=False))(_key(5), l)
  apply = jax.jit(functools.partial(model.apply, train=False))
  outs = []
  noise = jax.random.normal(_key(6), variables["params"]["head"]["proj"]["kernel"].shape)
  for factor in (1.0, 1e3, -1e3):  # a blown-up (and sign-flipped) output projection saturates the sigmoid
    scaled = jax.tree_util.tree_map_with_path(  # the projection starts at zero: give it weights first
        lambda path, x: noise * factor if "head" in jax.tree_util.keystr(path) and x.ndim == 4 else x, variables)
    outs.append(np.asarray(apply(scaled, l)))
  assert outs[0].shape == (2, side, side, 3) and outs[0].dtype == np.float32
  out = np.stack(outs)
  assert out.min() >= 0.0 and out.max() <= 1.0
  assert out.min() < 0.01 and out.max() > 0.99


def test_autoencoder_rejects_bad_target_combinations():
  with pytest.raises(ValueError, match="lab, rgb"):
    get_model("autoencoder", target="hsv")
  with pytest.raises(ValueError, match="regression"):
    get_model("autoencoder", target="rgb", head="classification")


def test_indivisible_input_size_is_rejected():
  model = _tiny("unet", "regression")  # two poolings: needs multiples of 4
  with pytest.raises(ValueError, match="divisible by 4"):
    model.init(jax.random.key(0), jnp.zeros((1, 18, 18, 1)), train=False)


@pytest.mark.parametrize("head,channels,activation", [
    ("regression", 2, "tanh"), ("regression", 3, "sigmoid"), ("regression", 2, "linear"),
    ("classification", 2, "tanh")])
def test_output_head_float32_outputs(head, channels, activation):
  head_module = OutputHead(head=head, num_bins=7, channels=channels, activation=activation)
  x = jax.random.normal(jax.random.key(0), (1, 4, 4, 8), dtype=jnp.bfloat16) * 10
  y, variables = head_module.init_with_output(jax.random.key(1), x)
  assert y.dtype == jnp.float32
  if head == "regression":  # it starts at zero (gray): give the projection weights to see the squashing
    kernel = variables["params"]["proj"]["kernel"]
    variables = {"params": {**variables["params"], "proj": {
        **variables["params"]["proj"], "kernel": jax.random.normal(jax.random.key(2), kernel.shape)}}}
    y = head_module.apply(variables, x)
  assert variables["params"]["proj"]["kernel"].dtype == jnp.float32
  assert y.shape == (1, 4, 4, 7 if head == "classification" else channels)
  y = np.asarray(y)
  if head == "regression" and activation == "tanh":
    assert np.abs(y).max() <= 1.0
  if activation == "sigmoid":
    assert y.min() >= 0.0 and y.max() <= 1.0
  if head == "classification" or activation == "linear":
    assert np.abs(y).max() > 1.0  # raw, unsquashed


def test_output_head_rejects_unknown_names():
  with pytest.raises(ValueError, match="regression, classification"):
    OutputHead(head="bins")
  with pytest.raises(ValueError, match="tanh, sigmoid, linear"):
    OutputHead(activation="relu")


def test_ab_scale_covers_srgb_gamut():
  # ab of 8-bit sRGB spans a in [-86.2, 98.2], b in [-107.9, 94.5] (extremes over all 256^3 colors): inside tanh's range
  assert 107.9 / AB_SCALE < 1.0



@pytest.mark.parametrize("name", SCRATCH)
def test_untrained_regression_predicts_gray(name):
  """An untrained regression model predicts exactly the grayscale baseline (ab = 0), whatever its input.

  With the random projection the head used to have, an untrained U-Net 16..256 predicted ab noise of std 30
  and the progressive study's hybrid U-Net std 52 (colorfulness 74 and 174 on photos whose truth is 41): short
  L2 runs started far more colorful than the truth and stayed there (experiments/reference_colorizers).
  """
  side = TINY[name][1]
  out = _tiny(name, "regression").apply(_tiny_variables(name, "regression"), _l_batch(side), train=False)
  np.testing.assert_array_equal(np.asarray(out), 0.0)
  rgb_head = OutputHead(head="regression", channels=3, activation="sigmoid")  # seed 003's RGB autoencoder
  x = jax.random.normal(_key(2), (2, 4, 4, 8))
  np.testing.assert_array_equal(np.asarray(rgb_head.apply(rgb_head.init(_key(0), x), x)), 0.5)
