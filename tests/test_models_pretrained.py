"""Registry models with pretrained-encoder backbones: vgg16_ae, resnet50_unet, koalarization, hybrid_unet.

Tiny variants (narrow encoders, one block per stage) keep compilation cheap; the full-size encoders are checked
against Keras in test_keras_weights.py, and here only by parameter count (via jax.eval_shape).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.models import MODELS, get_model
from jaxcolor.models import keras_weights as kw
from jaxcolor.models import pretrained

NAMES = ("vgg16_ae", "resnet50_unet", "koalarization", "hybrid_unet")
HEADS = ("regression", "classification")
NUM_BINS = 13  # small bin count keeps the classification heads cheap; the default is 313

TINY = {
    "vgg16_ae": dict(encoder_width=1 / 16, encoder_depths=(1, 1, 1, 1, 1), decoder_features=(4,) * 5),
    "resnet50_unet": dict(encoder_width=1 / 16, encoder_stages=(1, 1, 1, 1), decoder_features=(4,) * 5),
    "koalarization": dict(width=1 / 16, encoder_width=1 / 16, encoder_blocks=(1, 1, 1), embed_size=75,
                          embed_dim=4, decoder_features=(4,) * 3),
    "hybrid_unet": dict(encoder_width=1 / 16, vgg_depths=(1,) * 5, resnet_stages=(1,) * 4, bottleneck_features=4,
                        decoder_features=(4,) * 5),
}

# Parameters + BatchNorm statistics of keras.applications.X(include_top=False).count_params().
KERAS_COUNTS = {"VGG16Encoder": 14_714_688, "ResNet50Encoder": 23_587_712, "ResNet50V2Encoder": 23_564_800,
                "InceptionResNetV2Encoder": 54_336_736}


# The tiny models run in milliseconds; XLA's CPU backend optimizations are most of the compile time.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def tiny(name: str, **kwargs):
  return get_model(name, **{**TINY[name], "num_bins": NUM_BINS, **kwargs})


def key(seed: int = 0):
  # RBG keys compile much faster than threefry on CPU, which dominates the cost of a jitted init here.
  return jax.random.key(seed, impl="unsafe_rbg")


def l_input(size: int = 32, batch: int = 2):
  return jax.random.uniform(jax.random.key(1), (batch, size, size, 1), minval=0.0, maxval=100.0)


_VARS: dict = {}


def init(name: str, head: str = "regression"):
  """Jitted init of the tiny model, cached per (name, head)."""
  if (name, head) not in _VARS:
    model, x = tiny(name, head=head), l_input()
    _VARS[name, head] = jit(lambda k: model.init(k, x, train=False))(key())
  return _VARS[name, head]


def test_registered():
  for name in NAMES:
    cls = MODELS[name]
    assert isinstance(cls.output_stride, int) and isinstance(cls.default_size, int)
    model = get_model(name)
    assert model.head == "regression" and model.num_bins == 313
    assert set(model.encoders()) == set(cls.encoder_names)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", NAMES)
def test_init_and_apply_under_jit(name, head):
  model, x = tiny(name, head=head), l_input()
  variables = init(name, head)
  y = jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  y_train, updates = jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
  channels = 2 if head == "regression" else NUM_BINS
  for out in (y, y_train):
    assert out.shape == (2, 32, 32, channels) and out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out)))
  if head == "regression":
    assert float(jnp.max(jnp.abs(y))) <= 1.0
  # Encoder BatchNorm keeps its running statistics (finetune_encoder_bn=False); the decoder's are updated.
  new_stats = updates["batch_stats"]
  for enc in model.encoder_names:
    if enc in variables.get("batch_stats", {}):
      jax.tree_util.tree_map(np.testing.assert_array_equal, new_stats[enc], variables["batch_stats"][enc])
  decoder = {k: v for k, v in new_stats.items() if k not in model.encoder_names}
  assert decoder and any(not np.array_equal(a, b) for a, b in zip(
      jax.tree_util.tree_leaves(decoder),
      jax.tree_util.tree_leaves({k: variables["batch_stats"][k] for k in decoder})))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "koalarization" else n
                                  for n in NAMES])  # Inception-ResNet-v2 alone takes ~20 s
def test_bfloat16_compute(name):
  """bfloat16 compute with float32 parameters: the same variables work, the output stays float32."""
  variables = init(name)
  model = tiny(name, dtype=jnp.bfloat16)
  y = jit(lambda v, x: model.apply(v, x, train=False))(variables, l_input())
  assert y.dtype == jnp.float32 and y.shape == (2, 32, 32, 2)
  assert bool(jnp.all(jnp.isfinite(y)))
  assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(variables))
  y32 = jit(lambda v, x: tiny(name).apply(v, x, train=False))(variables, l_input())
  assert float(jnp.mean(jnp.abs(y - y32))) < 0.02  # bfloat16 rounding only (single outliers can be larger)


def test_hybrid_progressive_resizing():
  """One set of hybrid_unet weights runs at every progressive-resizing size (seed 002: 32 ... 256)."""
  model, variables = tiny("hybrid_unet"), init("hybrid_unet")
  apply = jit(lambda v, x: model.apply(v, x, train=False))
  for size in (32, 64, 128):
    assert apply(variables, l_input(size, batch=1)).shape == (1, size, size, 2)
  with pytest.raises(ValueError, match="divisible by 32"):
    model.apply(variables, l_input(48, batch=1), train=False)


def test_default_size_shapes_and_encoder_counts():
  """At the default size (abstractly, via eval_shape) the encoders have exactly Keras' parameter counts."""
  for name in NAMES:
    model = get_model(name)
    x = jax.ShapeDtypeStruct((1, model.default_size, model.default_size, 1), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert out.shape == (1, model.default_size, model.default_size, 2)
    for enc_name, encoder in model.encoders().items():
      count = sum(a.size for col in variables.values() for a in jax.tree_util.tree_leaves(col.get(enc_name, {})))
      assert count == KERAS_COUNTS[type(encoder).__name__], (name, enc_name)


def test_load_pretrained_replaces_only_encoders(tmp_path):
  model = tiny("hybrid_unet")
  variables = init("hybrid_unet")
  files, expected = {}, {}
  for i, (enc_name, encoder) in enumerate(model.encoders().items()):
    rng = np.random.default_rng(i)
    expected[enc_name] = {col: jax.tree_util.tree_map(lambda a: rng.uniform(0.5, 1.5, a.shape).astype(np.float32),
                                                      variables[col][enc_name])
                          for col in ("params", "batch_stats") if enc_name in variables.get(col, {})}
    files[enc_name] = tmp_path / f"{enc_name}_notop.h5"
    kw.save_keras_h5(files[enc_name], encoder, expected[enc_name])
  loaded = pretrained.load_pretrained(model, variables, files)
  for col in variables:
    for sub in variables[col]:
      want = expected[sub][col] if sub in expected else variables[col][sub]
      jax.tree_util.tree_map(np.testing.assert_array_equal, loaded[col][sub], want)
  y = jit(lambda v, x: model.apply(v, x, train=False))(loaded, l_input())
  assert bool(jnp.all(jnp.isfinite(y)))


def test_load_pretrained_errors_name_file_and_layer(tmp_path):
  model = tiny("hybrid_unet")
  variables = init("hybrid_unet")
  vgg_file = tmp_path / "vgg16_notop.h5"
  kw.save_keras_h5(vgg_file, model.encoders()["vgg"], {"params": variables["params"]["vgg"]})
  with pytest.raises(FileNotFoundError, match="missing_resnet.h5"):
    pretrained.load_pretrained(model, variables, {"resnet": tmp_path / "missing_resnet.h5"})
  with pytest.raises(kw.KerasWeightsError, match=r"'conv1_conv' not found in Keras weights file .*vgg16_notop\.h5"):
    pretrained.load_pretrained(model, variables, {"resnet": vgg_file})  # a VGG16 file given for the ResNet50V2 encoder
  with pytest.raises(ValueError, match="no pretrained encoder 'inception'"):
    pretrained.load_pretrained(model, variables, {"inception": vgg_file})
