"""The CPU kernels reach every model from outside it: `builders.build_model` sets the model's layer fields to
`jaxcolor.cpu.kernels` while `conv_grad.cpu_paths()` (the XLA:CPU default), and leaves flax's layers (what GPUs
and TPUs run) otherwise. Both compute the same thing with the same parameters: outputs, BatchNorm statistics and
the gradient of a loss, in training mode, for both heads.

Per-layer equalities are in test_conv_grad / test_winograd / test_depthwise / test_layers / test_head_loss; this
checks that the models reach them through their fields alone. Tolerances: float32 sums over at most a few
thousand terms in another order (and Winograd's transforms) differ by ~1e-5 of the largest magnitude in each
tree (outputs, statistics, gradients); 1e-3 of it is the bound.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import builders, defaults
from jaxcolor.cpu import conv_grad, kernels
from jaxcolor.models import MODELS, get_model

# name -> (kwargs of a small variant, input side); widths reach the rewrites' thresholds where cheap: unet's
# 64-channel stride-1 convs use patches dW / Winograd-free paths, eccv16's strided 64+ channel convs phases dX.
VARIANTS = {
    "cnn_baseline": (dict(features=(4, 8)), 16),
    "autoencoder": (dict(features=(4, 4, 8, 8)), 16),
    "unet": (dict(features=(8, 16, 64)), 16),
    "eccv16": (dict(width=1 / 8), 32),
    "siggraph17": (dict(width=1 / 8), 32),  # dilated 3x3 convs, 4x4 stride-2 transposed convs
    "vgg16_ae": (dict(encoder_width=1 / 16, encoder_depths=(1, 1, 1, 1, 1), decoder_features=(4,) * 5), 32),
    "resnet50_unet": (dict(encoder_width=1 / 16, encoder_stages=(1, 1, 1, 1), decoder_features=(4,) * 5), 32),
    "koalarization": (dict(width=1 / 16, encoder_width=1 / 16, encoder_blocks=(1, 1, 1), embed_size=75,
                           embed_dim=4, decoder_features=(4,) * 3), 32),
    "hybrid_unet": (dict(encoder_width=1 / 16, vgg_depths=(1,) * 5, resnet_stages=(1,) * 4, bottleneck_features=4,
                         decoder_features=(4,) * 5), 32),
    # depthwise convs: shifted sums on CPU, XLA's grouped convs otherwise. 64 px, not 32: at 32 px the stride-32
    # BatchNorms normalize 2 values per channel (1 x 1 x batch 2), which amplifies float32 rounding in the
    # gradients ~1000x (stem kernel: 1.3e-2 relative apart at 32 px, 9e-6 at 64 px; either form alike)
    "efficientnet_unet": (dict(encoder_width=0.25, encoder_depth=0.3, decoder_features=(4,) * 4), 64),
}


def test_every_model_is_covered():
  assert sorted(VARIANTS) == sorted(MODELS)


def _loss_and_grads(model, variables, l):
  """(outputs, new batch_stats, grads of a weighted loss on the outputs) of a jitted training-mode apply."""
  def loss(params):
    out, upd = model.apply({**variables, "params": params}, l, train=True, mutable=["batch_stats"],
                           rngs={"dropout": jax.random.key(2)})
    weights = jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape)
    return jnp.sum(out * weights), (out, upd)
  (_, (out, upd)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
  return out, upd.get("batch_stats", {}), grads


def _close(a, b, scale, what):
  np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=0, atol=1e-3 * scale,
                             err_msg=what)


# The models with pretrained-encoder architectures and eccv16 compile for 20-45 s each: slow (`pytest -m slow`).
SLOW = ("vgg16_ae", "resnet50_unet", "koalarization", "hybrid_unet", "eccv16")


@pytest.mark.parametrize("head", ["regression", "classification"])
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(VARIANTS)])
def test_cpu_forms_match_the_plain_forms(name, head):
  kwargs, side = VARIANTS[name]
  assert conv_grad.cpu_paths()  # the suite runs on CPU, where the CPU forms are the default
  model = get_model(name, head=head, num_bins=13, **kwargs)  # flax's layers
  fast = get_model(name, head=head, num_bins=13, **kwargs, **kernels.for_model(MODELS[name]))
  assert (model.conv, fast.conv) == (nn.Conv, conv_grad.Conv)
  l = jax.random.uniform(jax.random.key(1), (2, side, side, 1), minval=0.0, maxval=100.0)
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0, impl="rbg"), l)
  init = lambda m: jax.eval_shape(lambda: m.init(jax.random.key(0), l, train=False))
  shapes = lambda m: jax.tree.map(lambda a: (a.shape, a.dtype), init(m))
  assert shapes(fast) == shapes(model)  # the same parameter tree, so checkpoints load in either
  cpu, plain = _loss_and_grads(fast, variables, l), _loss_and_grads(model, variables, l)
  for what, a, b in zip(("outputs", "batch_stats", "grads"), cpu, plain):
    assert jax.tree.structure(a) == jax.tree.structure(b), what
    # the scale of the whole tree: a gradient that is a cancellation residue (a BatchNorm scale's, ~1e-5
    # next to ~1e-1 elsewhere) differs by the rounding of the terms that cancelled, not of itself
    scale = max(float(np.max(np.abs(np.asarray(y)))) for y in jax.tree.leaves(b))
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
      _close(x, y, scale, f"{name} {head} {what} {jax.tree_util.keystr(path)}")


def test_build_model_gives_the_cpu_kernels_while_the_switch_is_on():
  config = defaults.get_config()
  config.model, config.model_kwargs = "efficientnet_unet", {"encoder_width": 0.25, "encoder_depth": 0.3}
  model = builders.build_model(config, 2)
  assert (model.conv, model.conv_transpose, model.max_pool) == (conv_grad.Conv, conv_grad.ConvTranspose,
                                                                 kernels.max_pool)
  previous = conv_grad.set_cpu_paths(False)
  try:
    model = builders.build_model(config, 2)
  finally:
    conv_grad.set_cpu_paths(previous)
  assert (model.conv, model.conv_transpose, model.max_pool) == (nn.Conv, nn.ConvTranspose, nn.max_pool)


def test_a_new_model_with_a_conv_field_gets_the_cpu_conv():
  """What a model declares of the kernels' fields is all it gets, so one written with flax's `conv: ModuleDef`
  pattern runs the CPU conv once built through `kernels.for_model`."""
  class Tiny(nn.Module):
    conv: type = nn.Conv

    @nn.compact
    def __call__(self, x):
      return self.conv(8, (3, 3))(x)

  assert kernels.for_model(Tiny) == {"conv": conv_grad.Conv}
  assert kernels.for_model(nn.Dense) == {}
  x = jnp.ones((2, 6, 6, 1))  # one input channel: the patches kernel gradient, a custom VJP
  fast = Tiny(**kernels.for_model(Tiny))
  assert "custom_vjp" in str(jax.make_jaxpr(fast.apply)(fast.init(jax.random.key(0), x), x))
