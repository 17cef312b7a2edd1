"""The Flax encoders reproduce keras.applications and load its HDF5 weight files.

For each of VGG16, ResNet50, ResNet50V2 and InceptionResNetV2 the test builds the Keras application (random
init, then every weight, BatchNorm statistics included, set to random values so that a misplaced weight shows),
writes its weights in the legacy HDF5 layout of the Keras ImageNet download files, loads that file into the Flax
encoder with `keras_weights.load_keras_weights` and compares feature maps and parameter counts.
"""
from __future__ import annotations

import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.models import keras_weights as kw
from jaxcolor.models.inception_resnet_v2 import InceptionResNetV2Encoder
from jaxcolor.models.resnet import ResNet50Encoder, ResNet50V2Encoder
from jaxcolor.models.vgg import VGG16Encoder

keras = pytest.importorskip("keras")
legacy_h5 = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")

RTOL = 1e-4  # of the largest magnitude in the feature map

# name -> (Keras constructor name, Flax encoder, input side, feature maps compared)
ENCODERS = {
    "vgg16": ("VGG16", VGG16Encoder(), 64,
              ("block1_conv2", "block3_conv3", "block5_conv3", "block5_pool")),
    "resnet50": ("ResNet50", ResNet50Encoder(), 64,
                 ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")),
    "resnet50v2": ("ResNet50V2", ResNet50V2Encoder(), 64,
                   ("conv1_conv", "conv2_block3_out", "conv4_block6_out", "conv5_block3_out", "post_relu")),
    "inception_resnet_v2": ("InceptionResNetV2", InceptionResNetV2Encoder(), 75,
                            ("mixed_5b", "mixed_6a", "mixed_7a", "conv_7b_ac")),
}


def randomize_keras_weights(model, seed: int = 0) -> None:
  """Random values for every weight: fan-in scaled kernels, BN gamma / variance in [0.5, 1.5], small offsets."""
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    for w in layer.weights:
      leaf, shape = w.path.split("/")[-1], tuple(w.shape)
      if leaf == "kernel":
        value = rng.normal(0.0, np.sqrt(1.0 / np.prod(shape[:-1])), shape)
      elif leaf in ("gamma", "moving_variance"):
        value = rng.uniform(0.5, 1.5, shape)
      else:  # bias, beta, moving_mean
        value = rng.normal(0.0, 0.1, shape)
      w.assign(value.astype(np.float32))


def save_legacy_h5(model, path) -> None:
  """The layout of the keras.applications download files, written by Keras' own legacy HDF5 writer."""
  with h5py.File(path, "w") as f:
    legacy_h5.save_weights_to_hdf5_group(f, model)


def _strings(attr) -> list[str]:
  return [a.decode() if isinstance(a, bytes) else str(a) for a in attr]


def encoder_shapes(encoder, size: int):
  return jax.eval_shape(lambda: encoder.init(jax.random.key(0), jnp.zeros((1, size, size, 3)), train=False))


class Case:
  def __init__(self, name: str, tmp_dir) -> None:
    ctor, self.encoder, self.size, self.outputs = ENCODERS[name]
    self.keras_model = getattr(keras.applications, ctor)(weights=None, include_top=False)
    randomize_keras_weights(self.keras_model)
    self.path = os.path.join(tmp_dir, f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5")
    save_legacy_h5(self.keras_model, self.path)
    self.variables = kw.load_keras_weights(self.path, self.encoder, encoder_shapes(self.encoder, self.size))


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
  made: dict[str, Case] = {}

  def get(name: str) -> Case:
    if name not in made:
      made[name] = Case(name, tmp_path_factory.mktemp(name))
    return made[name]

  return get


def _check_features(case: Case) -> None:
  x = np.random.default_rng(1).normal(0.0, 1.0, (2, case.size, case.size, 3)).astype(np.float32)
  probe = keras.Model(case.keras_model.inputs, [case.keras_model.get_layer(n).output for n in case.outputs])
  expected = [np.asarray(y) for y in probe([x], training=False)]
  apply = jax.jit(lambda v, x: case.encoder.apply(v, x, train=False),
                  compiler_options={"xla_backend_optimization_level": 0})  # faster to compile, same results
  got = apply(case.variables, jnp.asarray(x))
  for name, want in zip(case.outputs, expected):
    have = np.asarray(got[name])
    assert have.shape == want.shape, name
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(have, want, rtol=0, atol=RTOL * scale, err_msg=name)


def _check_count(case: Case) -> None:
  flax_count = sum(a.size for a in jax.tree_util.tree_leaves(case.variables))  # params + batch_stats
  assert flax_count == case.keras_model.count_params()


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "resnet50v2"])
def test_features_match_keras(cases, name):
  _check_features(cases(name))


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "resnet50v2"])
def test_param_count_matches_keras(cases, name):
  _check_count(cases(name))


@pytest.mark.slow
def test_inception_resnet_v2_matches_keras(cases):
  """Loaded by position (auto-generated Keras names), so this also checks the Keras layer order."""
  case = cases("inception_resnet_v2")
  _check_count(case)
  _check_features(case)


def test_written_file_has_download_layout_and_keras_reads_it(cases, tmp_path):
  """The test files are what Keras' legacy loader (used for the ImageNet downloads) reads back exactly."""
  case = cases("vgg16")
  with h5py.File(case.path, "r") as f:
    names = _strings(f.attrs["layer_names"])
    assert names == [layer.name for layer in case.keras_model.layers]  # input and pooling layers included
    assert _strings(f["block1_conv1"].attrs["weight_names"]) == ["block1_conv1/kernel", "block1_conv1/bias"]
    assert f["block1_conv1"]["block1_conv1/kernel"].shape == (3, 3, 3, 64)
    assert len(f["block1_pool"].attrs["weight_names"]) == 0
  fresh = keras.applications.VGG16(weights=None, include_top=False)
  fresh.load_weights(case.path)  # legacy .h5 path: matches layers by position, like the downloads
  for a, b in zip(fresh.get_weights(), case.keras_model.get_weights()):
    np.testing.assert_array_equal(a, b)


# --- reading files written by other Keras versions, and errors -------------------------------------------------

KERAS_LEAF = {"kernel": "kernel", "bias": "bias", "scale": "gamma", "mean": "moving_mean", "var": "moving_variance"}
KERAS1_LEAF = {"kernel": "W", "bias": "b", "scale": "gamma", "mean": "running_mean", "var": "running_std"}


def write_keras_h5(path, encoder, variables, *, style: str = "keras2", chunks: int = 1, drop=(), auto_names=False,
                   bn_beta_leaf: str = "beta") -> None:
  """Writes Flax encoder variables as a legacy Keras weights file with h5py, the way Keras 1/2 did.

  style "keras2": weight names "layer/kernel:0"; "keras1": "layer_W_1:0" (the 2016 VGG16 download).
  auto_names: layer names "conv2d_1", "batch_normalization_1", ... as in the InceptionResNetV2 download.
  chunks > 1 splits `layer_names` over layer_names0, layer_names1, ... as Keras does for long lists.
  """
  counters: dict[str, int] = {}
  entries = [("input_1", [])]
  for layer in encoder.keras_layers():
    if layer.name in drop:
      continue
    name = layer.name
    if auto_names and not name.startswith(("block", "conv_7b")):
      base = "conv2d" if layer.kind.startswith("conv") else "batch_normalization"
      counters[base] = counters.get(base, 0) + 1
      name = f"{base}_{counters[base]}"
    values = []
    for collection, leaf in kw.KINDS[layer.kind]:
      node = variables[collection]
      for key in (*layer.path, leaf):
        node = node[key]
      keras_leaf = bn_beta_leaf if (leaf == "bias" and layer.kind.startswith("bn")) else (
          KERAS1_LEAF if style == "keras1" else KERAS_LEAF)[leaf]
      wname = f"{name}_{keras_leaf}_1:0" if style == "keras1" else f"{name}/{keras_leaf}:0"
      values.append((wname, np.asarray(node)))
    entries.append((name, values))
  with h5py.File(path, "w") as f:
    names = np.array([n.encode() for n, _ in entries])
    if chunks == 1:
      f.attrs["layer_names"] = names
    else:
      for i, part in enumerate(np.array_split(names, chunks)):
        f.attrs[f"layer_names{i}"] = part
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.1.5"
    for name, values in entries:
      g = f.create_group(name)
      g.attrs["weight_names"] = np.array([w.encode() for w, _ in values])
      for wname, value in values:
        g.create_dataset(wname, data=value)


TINY_VGG = VGG16Encoder(width=1 / 16, depths=(1, 1, 1, 1, 1))
TINY_RESNET = ResNet50Encoder(width=1 / 16, stage_sizes=(1, 1, 1, 1))
TINY_IRV2 = InceptionResNetV2Encoder(width=1 / 16, blocks=(1, 1, 1))


_INIT_CACHE: dict[tuple[str, int], dict] = {}


def init_vars(encoder, size: int = 32, seed: int = 0):
  """Initialized variables of a (tiny) encoder as numpy, cached per configuration."""
  key = (repr(encoder), size, seed)
  if key not in _INIT_CACHE:
    _INIT_CACHE[key] = _init_vars(encoder, size, seed)
  return jax.tree_util.tree_map(np.copy, _INIT_CACHE[key])


def _init_vars(encoder, size: int, seed: int):
  """Random numpy values in the encoder's variable tree (no jit-compiled init: this is about file mapping)."""
  shapes = encoder_shapes(encoder, size)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(lambda s: rng.uniform(0.5, 1.5, s.shape).astype(s.dtype), shapes)


def assert_trees_equal(a, b) -> None:
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_reads_keras1_weight_names_and_split_layer_names(tmp_path):
  path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
  variables = init_vars(TINY_VGG)
  write_keras_h5(path, TINY_VGG, variables, style="keras1", chunks=3)
  assert_trees_equal(kw.load_keras_weights(path, TINY_VGG, variables), variables)


def test_resnet_batchnorm_round_trip(tmp_path):
  path = tmp_path / "r50.h5"
  variables = init_vars(TINY_RESNET)
  write_keras_h5(path, TINY_RESNET, variables)
  assert_trees_equal(kw.load_keras_weights(path, TINY_RESNET, jax.eval_shape(lambda: variables)), variables)


def test_inception_loads_auto_named_layers_by_position(tmp_path):
  path = tmp_path / "irv2.h5"
  variables = init_vars(TINY_IRV2, size=75)
  write_keras_h5(path, TINY_IRV2, variables, auto_names=True)
  assert_trees_equal(kw.load_keras_weights(path, TINY_IRV2, variables), variables)


def test_missing_file_is_named(tmp_path):
  path = tmp_path / "nowhere" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
  with pytest.raises(FileNotFoundError, match="nowhere"):
    kw.load_keras_weights(path, TINY_VGG, init_vars(TINY_VGG))


def test_not_an_hdf5_file_is_named(tmp_path):
  path = tmp_path / "weights.h5"
  path.write_bytes(b"not hdf5")
  with pytest.raises(kw.KerasWeightsError, match="weights.h5"):
    kw.load_keras_weights(path, TINY_VGG, init_vars(TINY_VGG))


def test_missing_layer_names_layer_and_file(tmp_path):
  path = tmp_path / "vgg.h5"
  variables = init_vars(TINY_VGG)
  write_keras_h5(path, TINY_VGG, variables, drop=("block3_conv1",))
  with pytest.raises(kw.KerasWeightsError, match=r"'block3_conv1'.*vgg\.h5"):
    kw.load_keras_weights(path, TINY_VGG, variables)


def test_wrong_shape_names_layer_and_file(tmp_path):
  path = tmp_path / "r50_narrow.h5"
  write_keras_h5(path, TINY_RESNET, init_vars(TINY_RESNET))
  wider = ResNet50Encoder(width=1 / 8, stage_sizes=(1, 1, 1, 1))
  with pytest.raises(kw.KerasWeightsError, match=r"r50_narrow\.h5.*'conv1_conv'.*\(7, 7, 3, 4\).*\(7, 7, 3, 8\)"):
    kw.load_keras_weights(path, wider, init_vars(wider))


def test_wrong_number_of_weights_names_layer(tmp_path):
  path = tmp_path / "vgg.h5"
  variables = init_vars(TINY_VGG)
  write_keras_h5(path, TINY_VGG, variables)
  with h5py.File(path, "r+") as f:  # block2_conv1 saved without its bias
    del f["block2_conv1"]["block2_conv1/bias:0"]
    f["block2_conv1"].attrs["weight_names"] = np.array([b"block2_conv1/kernel:0"])
  with pytest.raises(kw.KerasWeightsError, match=r"vgg\.h5.*layer 'block2_conv1'.*expected 2 weights"):
    kw.load_keras_weights(path, TINY_VGG, variables)


def test_positional_count_mismatch_is_explained(tmp_path):
  path = tmp_path / "irv2.h5"
  variables = init_vars(TINY_IRV2, size=75)
  write_keras_h5(path, TINY_IRV2, variables, auto_names=True, drop=("block17_1_conv",))
  with pytest.raises(kw.KerasWeightsError, match=r"irv2\.h5.* has \d+ layers with weights, the encoder expects"):
    kw.load_keras_weights(path, TINY_IRV2, variables)


def test_exported_file_loads_into_keras(cases, tmp_path):
  """`save_keras_h5` writes what Keras' own legacy loader reads: Flax -> file -> Keras gives the same weights."""
  case = cases("vgg16")
  path = tmp_path / "exported.h5"
  kw.save_keras_h5(path, case.encoder, case.variables)
  fresh = keras.applications.VGG16(weights=None, include_top=False)
  fresh.load_weights(str(path))
  for a, b in zip(fresh.get_weights(), case.keras_model.get_weights()):
    np.testing.assert_array_equal(a, b)
  assert_trees_equal(kw.load_keras_weights(path, case.encoder, case.variables), case.variables)


def test_exported_inception_round_trip(tmp_path):
  path = tmp_path / "irv2.h5"
  variables = init_vars(TINY_IRV2, size=75)
  kw.save_keras_h5(path, TINY_IRV2, variables)
  assert_trees_equal(kw.load_keras_weights(path, TINY_IRV2, variables), variables)


# --- input preprocessing ------------------------------------------------------------------------------------------


def test_gray_rgb_is_the_exact_lab_inverse():
  from skimage.color import lab2rgb

  l = np.linspace(0.0, 100.0, 101, dtype=np.float32).reshape(1, -1, 1, 1)
  grey = np.asarray(kw.gray_rgb_from_l(jnp.asarray(l)))  # (1, 101, 1, 3) in [0, 255]
  assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])
  lab = np.concatenate([l, np.zeros_like(l), np.zeros_like(l)], axis=-1)[0]
  np.testing.assert_allclose(grey[0] / 255.0, lab2rgb(lab).astype(np.float32), atol=2e-4)
  assert grey[0, 0, 0, 0] == 0.0 and abs(grey[0, -1, 0, 0] - 255.0) < 0.1


@pytest.mark.parametrize("mode,module", [("caffe", "vgg16"), ("caffe", "resnet50"), ("tf", "resnet_v2"),
                                         ("tf", "inception_resnet_v2")])
def test_preprocessing_matches_keras(mode, module):
  assert getattr({"vgg16": VGG16Encoder, "resnet50": ResNet50Encoder, "resnet_v2": ResNet50V2Encoder,
                  "inception_resnet_v2": InceptionResNetV2Encoder}[module], "preprocessing") == mode
  rgb = np.random.default_rng(0).uniform(0.0, 255.0, (2, 5, 5, 3)).astype(np.float32)
  want = getattr(keras.applications, module).preprocess_input(rgb.copy())
  np.testing.assert_allclose(np.asarray(kw.keras_preprocess(jnp.asarray(rgb), mode)), np.asarray(want), atol=1e-4)


def test_positional_shape_error_names_both_layers(tmp_path):
  path = tmp_path / "irv2.h5"
  write_keras_h5(path, TINY_IRV2, init_vars(TINY_IRV2, size=75), auto_names=True)
  wider = InceptionResNetV2Encoder(width=1 / 8, blocks=(1, 1, 1))
  with pytest.raises(kw.KerasWeightsError, match=r"irv2\.h5.*layer 'stem_b0_0_conv' \(file layer 'conv2d_1'"):
    kw.load_keras_weights(path, wider, encoder_shapes(wider, 75))
