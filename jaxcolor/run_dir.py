"""The run folder: what a training run leaves in its `workdir` (local or gs://) and how it is read back.

Layout of a run folder:
  config.json          the run's config (JSON), written by `write_artifacts`, read only through `read_config`
  bins.npz             ab bin set (centers, step, extent), classification runs only
  prior.npz            empirical ab prior, in the `jaxcolor.colorspace.prior.save_prior` format, rebalanced runs only
  checkpoints/<step>/  Orbax steps (`jaxcolor.checkpoint.Checkpointer`), items "state" (arrays) and "meta" (JSON)
  checkpoints_corrupt/ steps that failed to restore, moved aside so training can save those steps again
  tensorboard/, samples/  TensorBoard events and sample grids (`jaxcolor.train`)
A shipped reference model is a folder `jaxcolor/reference_models/<name>/` (package data; `REFERENCE_MODELS`) with
the same config.json / bins.npz / prior.npz and, in place of checkpoints:
  variables.npz        every parameter and BatchNorm statistic, keyed by its path (`jaxcolor.npz_tree`)
  card.json, MODEL_CARD.md   release facts and metrics (`jaxcolor.inference.reference`)

Resuming: a workdir holds one run, so `write_artifacts` refuses another config, other bins or another prior; a
field that a saved config.json lacks reads as its `jaxcolor.defaults` value (`config_differences`). Starting from
another model (`config.init_from`: a reference model's name or a run's workdir) is resolved and merged here too,
so training never imports `jaxcolor.inference`. Nothing here unpickles, and importing this module loads neither
the models nor the losses.
"""
from __future__ import annotations

import importlib.resources
import json
import logging
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from etils import epath

from jaxcolor import checkpoint, npz_tree, storage
from jaxcolor.colorspace import prior as prior_lib
from jaxcolor.colorspace import quantize

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
BINS_FILE = "bins.npz"
PRIOR_FILE = "prior.npz"
VARIABLES_FILE = "variables.npz"

# name -> what it is for; one folder each under jaxcolor/reference_models/.
REFERENCE_MODELS: dict[str, str] = {
    "accurate": "EfficientNet-Lite0 U-Net, regression of ab (L1): the most accurate colors (PSNR, AuC), muted "
                "where unsure",
    "vivid": "EfficientNet-Lite0 U-Net, classification over 313 ab bins, rebalanced, annealed mean (Zhang et al. "
             "2016): colorful, confident hues",
    "guided": "the accurate network with color hints (Zhang et al. 2017): give a few colors with --hints, it colors "
              "around them; without hints it colorizes automatically",
}


class RunArtifacts(NamedTuple):
  """What inference needs besides the weights."""
  config: dict[str, Any]
  bins: quantize.ABBins | None
  prior: np.ndarray | None


# -- config.json, bins, prior ------------------------------------------------------------------------------


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
  """The config.json of a run or a shipped model as a dict, as today's code reads it: the one reader of that file
  (resume, inference, reference models, init_from all come here). A config.json written before a field existed
  holds that field's `jaxcolor.defaults` value (a field added later defaults to what the code did before it), and
  one written before `config.loss` became one term among `config.losses` is translated
  (`objective.upgrade_saved_config`). Fails naming the file when the folder has none."""
  path = storage.path(folder) / CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(f"{path} not found: not a jaxcolor run directory")
  saved = json.loads(storage.read_bytes(path))
  # Here, not at the top: defaults imports the losses and through them the models.
  from jaxcolor import defaults
  from jaxcolor.losses import objective
  return _with_defaults(objective.upgrade_saved_config(saved), checkpoint.to_json_dict(defaults.get_config()))


def _with_defaults(saved: Any, default: Any) -> Any:
  """`saved` with every key it lacks (at any depth of nested dicts) taken from `default`."""
  if not (isinstance(saved, dict) and isinstance(default, dict)):
    return saved
  return {**default, **{k: _with_defaults(v, default.get(k)) for k, v in saved.items()}}


def read_artifacts(folder: str | os.PathLike) -> RunArtifacts:
  """Reads what `write_artifacts` wrote (JSON and .npz, without pickle)."""
  folder = storage.path(folder)
  config = read_config(folder)
  bins = prior = None
  if (folder / BINS_FILE).exists():
    with np.load(storage.open_bytes(folder / BINS_FILE), allow_pickle=False) as f:
      bins = quantize.bins_from_centers(f["centers"], float(f["step"]), float(f["extent"]))
  if (folder / PRIOR_FILE).exists():
    p, prior_bins = prior_lib.load_prior(folder / PRIOR_FILE)
    if bins is None or not np.array_equal(prior_bins.centers, bins.centers):
      raise ValueError(f"{folder / PRIOR_FILE} refers to other bins than {folder / BINS_FILE}")
    prior = np.asarray(p)
  return RunArtifacts(config, bins, prior)


def write_artifacts(workdir: str | os.PathLike, config: Mapping[str, Any], bins: quantize.ABBins | None = None,
                    prior: Any = None, *, overwrite: bool = False, may_differ: Sequence[str] = ()) -> None:
  """Writes config.json, bins.npz and prior.npz into workdir (primary host only).

  Resuming with the same values is a no-op; different values raise ValueError naming what differs, unless
  `overwrite`, or unless only top-level keys in `may_differ` differ (e.g. total_steps, to train a run longer):
  then config.json is rewritten with the new values. `config` is a JSON-able mapping or a ConfigDict.
  """
  if prior is not None and bins is None:
    raise ValueError("a prior is only meaningful with the bins it refers to")
  if prior is not None and np.shape(prior) != (bins.num_bins,):
    raise ValueError(f"prior has shape {np.shape(prior)}, expected ({bins.num_bins},)")
  if jax.process_index() != 0:
    return
  workdir = storage.path(workdir)
  config = checkpoint.to_json_dict(config)
  config_path = workdir / CONFIG_FILE
  if config_path.exists() and not overwrite:
    differ = config_differences(workdir, config)
    fixed = [k for k in differ if k.split(".")[0] not in may_differ]
    if fixed:
      raise ValueError(f"{config_path} holds a different config (keys differ: {', '.join(fixed)}); "
                       "use another workdir or overwrite=True")
    _check_same_bins_and_prior(workdir, bins, prior)
    if differ:
      log.info("resuming %s with new values of %s", workdir, ", ".join(differ))
      storage.write_atomic(config_path, json.dumps(config, indent=2, sort_keys=True).encode())
    return
  workdir.mkdir(parents=True, exist_ok=True)
  storage.write_atomic(config_path, json.dumps(config, indent=2, sort_keys=True).encode())
  for name in (BINS_FILE, PRIOR_FILE):
    (workdir / name).unlink(missing_ok=True)  # a stale file from an overwritten run must not survive
  if bins is not None:
    storage.write_atomic(workdir / BINS_FILE, lambda f: np.savez(
        f, centers=bins.centers, step=np.float32(bins.step), extent=np.float32(bins.extent)))
  if prior is not None:
    prior_lib.save_prior(workdir / PRIOR_FILE, prior, bins)


def config_differences(workdir: str | os.PathLike, config: Mapping[str, Any]) -> list[str]:
  """Dotted paths where `config` differs from the workdir's config.json ([] if none or no file), as `read_config`
  reads that file (fields it predates at their defaults); `config.losses` compared by the weights the terms train
  with (`objective.effective_weights`), so an unset weight and 0.0 are the same."""
  if not (storage.path(workdir) / CONFIG_FILE).exists():
    return []
  from jaxcolor.losses import objective  # here, not at the top: the losses import the models
  saved, new = read_config(workdir), checkpoint.to_json_dict(config)
  for c in (saved, new):
    try:
      c["losses"] = objective.effective_weights(c)
    except ValueError:  # no term left: compared as written (check_config names the problem)
      pass
  return _diff_keys(saved, new)


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
  """Dotted paths where two JSON trees differ."""
  if isinstance(a, dict) and isinstance(b, dict):
    return [k for key in sorted(set(a) | set(b))
            for k in _diff_keys(a.get(key, _MISSING), b.get(key, _MISSING), f"{prefix}{key}.")]
  return [] if a == b else [prefix[:-1] or "<root>"]


_MISSING = object()


def _check_same_bins_and_prior(workdir: epath.Path, bins: quantize.ABBins | None, prior: Any) -> None:
  """On resume, bins and prior must match what the run started with."""
  old = read_artifacts(workdir)
  if (old.bins is None) != (bins is None) or (
      bins is not None and not np.array_equal(old.bins.centers, bins.centers)):
    raise ValueError(f"{workdir / BINS_FILE}: the run's ab bins differ from the given ones (overwrite=True?)")
  if (old.prior is None) != (prior is None) or (
      prior is not None and not np.array_equal(old.prior, np.asarray(prior, np.float32))):
    raise ValueError(f"{workdir / PRIOR_FILE}: the run's prior differs from the given one (overwrite=True?)")


# -- model variables ---------------------------------------------------------------------------------------


def restore_variables(workdir: str | os.PathLike, step: int | None = None) -> tuple[dict[str, Any], int]:
  """A run's model variables {"params", "batch_stats"} from checkpoint `step` (default: newest), and that step.

  For inference, export and fine-tuning, which need the model but not the optimizer state; read-only.
  """
  with checkpoint.Checkpointer(workdir, read_only=True) as ckpt:
    state, _, saved_step = ckpt.restore(None, step=step)
  return {"params": state["params"], "batch_stats": state.get("batch_stats") or {}}, saved_step


def write_variables(folder: str | os.PathLike, variables: Mapping[str, Any], dtype: str | None = None) -> None:
  """{"params": ..., "batch_stats": ...} -> folder/variables.npz (dtype="float16": half the size)."""
  folder = storage.path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  npz_tree.save_tree(folder / VARIABLES_FILE, variables, dtype)


def read_variables(folder: str | os.PathLike) -> dict[str, Any]:
  """folder/variables.npz -> {"params": ..., "batch_stats": ...} of numpy arrays (float32; never unpickled)."""
  path = storage.path(folder) / VARIABLES_FILE
  variables = npz_tree.load_tree(path)
  if "params" not in variables:
    raise ValueError(f"{path}: holds no 'params/...' arrays")
  variables.setdefault("batch_stats", {})
  return variables


# -- shipped reference models ------------------------------------------------------------------------------


def reference_root() -> pathlib.Path:
  """The folder holding the shipped models (inside the installed package)."""
  return pathlib.Path(str(importlib.resources.files("jaxcolor") / "reference_models"))


def check_reference_name(name: str) -> None:
  """Fails listing the shipped models' names unless `name` is one of them."""
  if name not in REFERENCE_MODELS:
    raise ValueError(f"unknown reference model {name!r}; choose one of: {', '.join(REFERENCE_MODELS)}")


def reference_folder(name: str) -> pathlib.Path:
  """The folder of shipped model `name`; an unknown name fails listing the names, a missing one naming the file."""
  check_reference_name(name)
  folder = reference_root() / name
  if not (folder / VARIABLES_FILE).exists():
    raise FileNotFoundError(f"{folder / VARIABLES_FILE} not found: reference model {name!r} is not installed "
                            f"(the package data of this jaxcolor install is incomplete)")
  return folder


# -- config.init_from: starting a run from another model's variables ---------------------------------------


def init_source(source: str) -> epath.Path:
  """`config.init_from` -> the folder holding its config.json / bins / prior (a reference model's or a run's)."""
  if source in REFERENCE_MODELS:
    return storage.path(reference_folder(source))
  path = storage.path(source)
  if not (path / CONFIG_FILE).exists():
    raise ValueError(f"config.init_from={source!r} is neither a reference model ({', '.join(REFERENCE_MODELS)}) "
                     f"nor a run directory (no {CONFIG_FILE} in {path})")
  return path


def load_init_variables(source: str) -> dict[str, Any]:
  """`config.init_from` (a reference model name or a run's workdir, newest checkpoint) -> its variables."""
  if source in REFERENCE_MODELS:
    return read_variables(reference_folder(source))
  return restore_variables(init_source(source))[0]


def check_same_structure(loaded: Mapping[str, Any], expected: Mapping[str, Any], source: str) -> None:
  """Raises ValueError listing the first paths whose presence or shape differ between two variable trees."""
  shapes = lambda tree: {k: tuple(v.shape) for k, v in npz_tree.flatten(tree).items()}
  a, b = shapes(loaded), shapes(expected)
  problems = [f"{k}: missing in {source}" for k in sorted(set(b) - set(a))]
  problems += [f"{k}: not in this model" for k in sorted(set(a) - set(b))]
  problems += [f"{k}: shape {a[k]} in {source}, {b[k]} here" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
  if problems:
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    raise ValueError(f"config.init_from={source!r} does not fit this config's model: "
                     f"{'; '.join(problems[:5])}{more}. Use the config it was trained with "
                     f"(model, model_kwargs, head, bins)")


def merge_init_variables(loaded: Mapping[str, Any], fresh: Mapping[str, Any], source: str,
                         exclude: Sequence[str] = ()) -> dict[str, Any]:
  """`fresh` (a new model's variables) with every entry taken from `loaded`, except paths under `exclude`.

  `exclude` holds path prefixes such as "params/head": those stay at their fresh initialization, which lets a
  classification model start from a regression model's body (the two differ only in the head's projection).
  Everything else must match in presence and shape (`check_same_structure`). Every collection of `fresh` is in
  the result, an empty one (`batch_stats` of a model without BatchNorm) as {}.
  """
  sep = npz_tree.SEP
  under = lambda key, prefix: key == prefix.rstrip(sep) or key.startswith(prefix.rstrip(sep) + sep)
  excluded = lambda key: any(under(key, e) for e in exclude)
  new, old = npz_tree.flatten(fresh), npz_tree.flatten(loaded)
  unused = [e for e in exclude if not any(under(k, e) for k in new)]
  if unused:
    raise ValueError(f"config.init_from_exclude: {', '.join(unused)} names no variable of this model")
  kept = lambda flat: {k: v for k, v in flat.items() if not excluded(k)}
  check_same_structure(npz_tree.unflatten(kept(old)), npz_tree.unflatten(kept(new)), source)
  merged = npz_tree.unflatten({k: (v if excluded(k) else old[k]) for k, v in new.items()})
  return {collection: merged.get(collection, {}) for collection in fresh}
