"""Keras-applications compatibility for the pretrained encoders: input preprocessing and HDF5 weights.

Freezing encoders for the first N steps lives in `jaxcolor.optim` (config.freeze_prefixes / freeze_steps).

The encoders in `vgg.py`, `resnet.py` and `inception_resnet_v2.py` reproduce `keras.applications` VGG16,
ResNet50, ResNet50V2 and InceptionResNetV2 (include_top=False) layer for layer, so the ImageNet weights that
Keras downloads (e.g. `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`) load into them. This module reads
those files with h5py alone: no TensorFlow or Keras at load time, no pickle, no download.

File layout (the legacy Keras HDF5 weights format, written by Keras 1/2 `save_weights` and by Keras 3's
`keras.src.legacy.saving.legacy_h5_format.save_weights_to_hdf5_group`):
- the root (or, for a whole-model save, the group `model_weights`) has the attribute `layer_names`, every layer
  of the model in `model.layers` order, layers without weights included; long lists are split over the
  attributes `layer_names0`, `layer_names1`, ...;
- each layer is a group of that name with the attribute `weight_names`; each name is the path of a dataset
  inside the layer group (e.g. "conv1_conv/kernel:0", or "block1_conv1_W_1:0" in the 2016 VGG16 files);
- the weights of a layer come in the legacy order: trainable then non-trainable, i.e. Conv2D [kernel, bias],
  BatchNormalization [gamma, beta, moving_mean, moving_variance] (no gamma when scale=False), Dense
  [kernel, bias]. Kernels are HWIO for convs and (in, out) for dense layers, the same layout as Flax.

Matching file layers to encoder layers: by name when every layer the encoder expects is in the file (VGG16,
ResNet50 and ResNet50V2 name all their layers), otherwise by position among the layers that have weights,
which is how Keras itself loads these files (`load_weights` on an .h5 file); InceptionResNetV2 needs that,
since most of its layers carry auto-generated names ("conv2d_57") that depend on the Keras session.

Grey input: the encoders were trained on RGB, the models see only L. `gray_rgb_from_l` converts L to the sRGB
grey of the same lightness exactly (Lab with a = b = 0: Y = f^-1((L + 16) / 116), R = G = B = sRGB gamma of Y),
rather than the cruder L / 100 * 255, which is too dark in the mid-tones (L = 50 is sRGB 119, not 128).
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor.colorspace.color import linear_to_srgb

PathLike = str | os.PathLike

# ---------------------------------------------------------------------------------------------------------------
# Input preprocessing
# ---------------------------------------------------------------------------------------------------------------

# keras.applications.imagenet_utils "caffe" mode: RGB -> BGR, then subtract the ImageNet mean (BGR order).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSING_MODES = ("caffe", "tf")


def gray_rgb_from_l(l: jax.Array) -> jax.Array:
  """L (..., 1) in [0, 100] -> the sRGB grey with that lightness, (..., 3) float32 in [0, 255], R = G = B."""
  f = (jnp.clip(l.astype(jnp.float32), 0.0, 100.0) + 16.0) / 116.0
  y = jnp.where(f > 6.0 / 29.0, f ** 3, (f - 16.0 / 116.0) * (3.0 * (6.0 / 29.0) ** 2))  # relative luminance
  grey = 255.0 * linear_to_srgb(y)
  return jnp.concatenate([grey, grey, grey], axis=-1)


def keras_preprocess(rgb: jax.Array, mode: str) -> jax.Array:
  """`keras.applications.*.preprocess_input` on RGB in [0, 255], float32 (..., 3).

  "caffe" (VGG16, ResNet50): BGR with the ImageNet mean subtracted. "tf" (ResNet50V2, InceptionResNetV2):
  scaled to [-1, 1].
  """
  rgb = rgb.astype(jnp.float32)
  if mode == "caffe":
    return rgb[..., ::-1] - jnp.asarray(CAFFE_MEAN_BGR, jnp.float32)
  if mode == "tf":
    return rgb / 127.5 - 1.0
  raise ValueError(f"unknown preprocessing mode {mode!r}; choose one of: {', '.join(PREPROCESSING_MODES)}")


def encoder_input(l: jax.Array, mode: str, dtype: Any = jnp.float32) -> jax.Array:
  """L (B, H, W, 1) in [0, 100] -> the grey image as the pretrained encoder expects it, (B, H, W, 3) in dtype."""
  return keras_preprocess(gray_rgb_from_l(l), mode).astype(dtype)


# ---------------------------------------------------------------------------------------------------------------
# Describing an encoder's layers
# ---------------------------------------------------------------------------------------------------------------


class KerasLayer(NamedTuple):
  """One Keras layer with weights and where it lives in the Flax encoder.

  name: the Keras layer name; path: the Flax submodule path inside the encoder's variables; kind: one of KINDS.
  """
  name: str
  path: tuple[str, ...]
  kind: str


# kind -> [(collection, flax leaf name)] in the legacy Keras weight order.
KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    "conv": (("params", "kernel"), ("params", "bias")),
    "conv_nobias": (("params", "kernel"),),
    "bn": (("params", "scale"), ("params", "bias"), ("batch_stats", "mean"), ("batch_stats", "var")),
    "bn_noscale": (("params", "bias"), ("batch_stats", "mean"), ("batch_stats", "var")),
    "dense": (("params", "kernel"), ("params", "bias")),
}


class KerasWeightsError(ValueError):
  """A Keras weights file that cannot be read, or does not fit the encoder; the message names file and layer."""


# ---------------------------------------------------------------------------------------------------------------
# Reading the HDF5 file
# ---------------------------------------------------------------------------------------------------------------


def _decode(x: Any) -> str:
  return x.decode("utf8") if isinstance(x, bytes | np.bytes_) else str(x)


def _string_list_attr(node: Any, name: str) -> list[str] | None:
  """A list-of-strings attribute, also when Keras split it into name0, name1, ... (HDF5 header limit)."""
  if name in node.attrs:
    return [_decode(x) for x in np.atleast_1d(node.attrs[name])]
  if f"{name}0" not in node.attrs:
    return None
  out: list[str] = []
  i = 0
  while f"{name}{i}" in node.attrs:
    out.extend(_decode(x) for x in np.atleast_1d(node.attrs[f"{name}{i}"]))
    i += 1
  return out


class KerasH5Layer(NamedTuple):
  name: str
  weight_names: list[str]
  weights: list[np.ndarray]


def read_keras_h5(path: PathLike) -> list[KerasH5Layer]:
  """The layers that have weights in a legacy Keras HDF5 weights file, in the file's `layer_names` order."""
  import h5py  # local: only loading needs it

  from jaxcolor import storage
  where = storage.path(path)  # local (~ expanded) or gs://...
  path = str(where)
  if not where.is_file():
    raise FileNotFoundError(f"Keras weights file {path!r} does not exist (pass the path of a copy of the "
                            f"keras.applications '..._notop.h5' file, local or gs://; nothing is downloaded)")
  try:
    f = h5py.File(storage.readable(path), "r")
  except OSError as e:
    raise KerasWeightsError(f"cannot read Keras weights file {path!r} as HDF5: {e}") from e
  with f:
    root = f
    if "layer_names" not in f.attrs and "layer_names0" not in f.attrs and "model_weights" in f:
      root = f["model_weights"]  # a whole model saved with model.save("x.h5")
    layer_names = _string_list_attr(root, "layer_names")
    if layer_names is None:
      raise KerasWeightsError(f"{path!r} is not a Keras HDF5 weights file: no 'layer_names' attribute")
    layers = []
    for name in layer_names:
      if name not in root:
        raise KerasWeightsError(f"Keras weights file {path!r} lists layer {name!r} but has no group for it")
      group = root[name]
      weight_names = _string_list_attr(group, "weight_names") or []
      if not weight_names:
        continue
      try:
        weights = [np.asarray(group[w]) for w in weight_names]
      except KeyError as e:
        raise KerasWeightsError(f"Keras weights file {path!r}, layer {name!r}: missing dataset {e}") from e
      layers.append(KerasH5Layer(name, weight_names, weights))
  return layers


# ---------------------------------------------------------------------------------------------------------------
# Mapping into Flax variables
# ---------------------------------------------------------------------------------------------------------------


def _match_layers(path: str, file_layers: list[KerasH5Layer], expected: Sequence[KerasLayer],
                  match: str) -> list[tuple[KerasLayer, KerasH5Layer]]:
  by_name = {layer.name: layer for layer in file_layers}
  missing = [layer.name for layer in expected if layer.name not in by_name]
  if match == "auto":
    match = "name" if not missing else "order"
  if match == "name":
    if missing:
      raise KerasWeightsError(
          f"layer {missing[0]!r} not found in Keras weights file {path!r} ({len(missing)} of {len(expected)} "
          f"expected layers missing; the file has {len(file_layers)} layers with weights, "
          f"e.g. {[l.name for l in file_layers[:3]]})")
    return [(layer, by_name[layer.name]) for layer in expected]
  if match != "order":
    raise ValueError(f"unknown match mode {match!r}; choose one of: auto, name, order")
  if len(file_layers) != len(expected):
    hint = f"; first expected layer not in the file by name: {missing[0]!r}" if missing else ""
    raise KerasWeightsError(
        f"Keras weights file {path!r} has {len(file_layers)} layers with weights, the encoder expects "
        f"{len(expected)} (matching by position, as Keras does){hint}")
  return list(zip(expected, file_layers))


def _read_into_tree(path: str, layers: Sequence[KerasLayer], match: str
                    ) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
  """(variables tree, Flax layer path -> name of the file layer it came from)."""
  pairs = _match_layers(path, read_keras_h5(path), layers, match)
  out: dict[str, Any] = {"params": {}, "batch_stats": {}}
  sources = {}
  for layer, stored in pairs:
    slots = KINDS[layer.kind]
    if len(stored.weights) != len(slots):
      raise KerasWeightsError(
          f"Keras weights file {path!r}, layer {stored.name!r} (encoder layer {layer.name!r}, a {layer.kind}): "
          f"expected {len(slots)} weights {[s[1] for s in slots]}, found {len(stored.weights)} "
          f"{stored.weight_names}")
    sources[layer.path] = stored.name
    for (collection, leaf), value in zip(slots, stored.weights):
      node = out[collection]
      for key in layer.path:
        node = node.setdefault(key, {})
      node[leaf] = value
  if not out["batch_stats"]:
    del out["batch_stats"]
  return out, sources


def load_keras_weights(path: PathLike, encoder: Any, target: Mapping[str, Any], match: str | None = None
                       ) -> dict[str, Any]:
  """Loads a Keras-applications HDF5 file into the variables of `encoder` (a VGG16/ResNet/IRv2 encoder module).

  target: the encoder's variables, {"params": ..., "batch_stats": ...} (arrays or jax.ShapeDtypeStruct, e.g.
  from `jax.eval_shape` of the init), giving the tree, shapes and dtypes to fill. Returns the same tree with
  the file's values (cast to the target dtypes). Every target leaf must be filled with the right shape;
  otherwise KerasWeightsError names the file and the layer. match: "name", "order" or "auto" (see the module
  docstring); by default the encoder's `keras_match`. Use the "_notop" files: layers of the classifier top
  are ignored when matching by name but make the counts differ when matching by position.
  """
  path = os.fspath(path)
  layers = encoder.keras_layers()
  loaded, sources = _read_into_tree(path, layers, match or getattr(encoder, "keras_match", "auto"))
  owner = {layer.path: layer.name for layer in layers}
  target = flax.core.unfreeze(target) if isinstance(target, flax.core.FrozenDict) else target

  def where(keypath: tuple[str, ...]) -> str:
    for n in range(len(keypath), 0, -1):
      sub = keypath[1:n]
      if sub in owner:
        source = f"file layer {sources[sub]!r}, " if sources.get(sub, owner[sub]) != owner[sub] else ""
        return f"layer {owner[sub]!r} ({source}{'/'.join(keypath)})"
    return "/".join(keypath)

  flat_target = flax.traverse_util.flatten_dict({k: target[k] for k in target if k in ("params", "batch_stats")})
  flat_loaded = flax.traverse_util.flatten_dict(loaded)
  for keypath in flat_loaded:
    if keypath not in flat_target:
      raise KerasWeightsError(f"Keras weights file {path!r}: {where(keypath)} has no counterpart in the "
                              f"encoder's variables (encoder built with a different configuration?)")
  # Check in Keras layer order, so that the first error reported is the first bad layer.
  ordered = [(col, *layer.path, leaf) for layer in layers for col, leaf in KINDS[layer.kind]]
  known = set(ordered)
  ordered += [k for k in flat_target if k not in known]
  result = {}
  for keypath in ordered:
    if keypath not in flat_target:
      continue
    ref = flat_target[keypath]
    if keypath not in flat_loaded:
      raise KerasWeightsError(f"Keras weights file {path!r} gives no value for encoder variable "
                              f"{'/'.join(keypath)} (not covered by the encoder's Keras layer list)")
    value = flat_loaded[keypath]
    if tuple(value.shape) != tuple(ref.shape):
      raise KerasWeightsError(f"Keras weights file {path!r}: {where(keypath)} has shape {tuple(value.shape)}, "
                              f"the encoder expects {tuple(ref.shape)}")
    result[keypath] = jnp.asarray(value, dtype=ref.dtype)
  return flax.traverse_util.unflatten_dict(result)


def save_keras_h5(path: PathLike, encoder: Any, variables: Mapping[str, Any]) -> None:
  """Writes an encoder's variables as a legacy Keras HDF5 weights file (the inverse of `load_keras_weights`).

  Layer names are those of `encoder.keras_layers()` and weight names "layer/kernel:0" etc. (Keras 2 style).
  Keras' `model.load_weights(path)` on the matching keras.applications model reads it (by position), so a
  fine-tuned encoder can go back to Keras.
  """
  import h5py

  keras_leaf = {"kernel": "kernel", "bias": "bias", "scale": "gamma", "mean": "moving_mean",
                "var": "moving_variance"}
  from jaxcolor import storage
  layers = encoder.keras_layers()
  buf = io.BytesIO()  # written whole (local or gs://): a crash never leaves a truncated .h5
  with h5py.File(buf, "w") as f:
    f.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in layers])
    f.attrs["backend"] = b"jax"
    for layer in layers:
      group = f.create_group(layer.name)
      names = []
      for collection, leaf in KINDS[layer.kind]:
        node = variables[collection]
        for key in (*layer.path, leaf):
          node = node[key]
        kname = "beta" if (leaf == "bias" and layer.kind.startswith("bn")) else keras_leaf[leaf]
        names.append(f"{layer.name}/{kname}:0")
        group.create_dataset(names[-1], data=np.asarray(node, dtype=np.float32))
      group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
  storage.write_atomic(path, buf.getvalue())
