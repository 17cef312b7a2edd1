"""Reference colorizers shipped inside the package: the registry, export from a run, loading without pickle.

    python -m jaxcolor.colorize photo.jpg --out=colorized          # the default reference model
    python -m jaxcolor.colorize photo.jpg --out=colorized --model=accurate
    python -m jaxcolor.inference.reference export --workdir=RUN --name=vivid [--step=N]   # (maintainers) ship a run

Each model is a folder `jaxcolor/reference_models/<name>/` installed as package data:
  config.json, bins.npz, prior.npz   the run's artifacts, exactly as training writes them;
  variables.npz                      every parameter and BatchNorm statistic, keyed by its path
                                     ("params/down0/conv0/Conv_0/kernel"), read with allow_pickle=False;
  card.json                          training facts and the metrics measured at release (the release test
                                     compares against them); MODEL_CARD.md and its figures for people.
The recipes are `configs/reference_<name>.py`.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.resources
import json
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxcolor import storage

# name -> what it is for; one folder each under reference_models/.
MODELS: dict[str, str] = {
    "accurate": "EfficientNet-Lite0 U-Net, regression of ab (L1): the most accurate colors (PSNR, AuC), muted "
                "where unsure",
    "vivid": "EfficientNet-Lite0 U-Net, classification over 313 ab bins, rebalanced, annealed mean (Zhang et al. "
             "2016): colorful, confident hues",
    "guided": "the accurate network with color hints (Zhang et al. 2017): give a few colors with --hints, it colors "
              "around them; without hints it colorizes automatically",
}
DEFAULT = "vivid"
VARIABLES_FILE = "variables.npz"
CARD_FILE = "card.json"
_SEP = "/"


def root() -> pathlib.Path:
  """The folder holding the shipped models (inside the installed package)."""
  return pathlib.Path(str(importlib.resources.files("jaxcolor") / "reference_models"))


def check_name(name: str) -> None:
  if name not in MODELS:
    raise ValueError(f"unknown reference model {name!r}; choose one of: {', '.join(MODELS)}")


@dataclasses.dataclass
class ReferenceModel:
  """A shipped model as loaded: config dict, ab bins and prior (classification), variables, release card."""
  name: str
  folder: pathlib.Path
  config: dict[str, Any]
  bins: Any
  prior: np.ndarray | None
  variables: dict[str, Any]
  card: dict[str, Any]

  @property
  def step(self) -> int:
    return int(self.card.get("step", 0))


def load(name: str) -> ReferenceModel:
  """Loads the shipped model `name`; a missing or damaged file fails naming it."""
  from jaxcolor import checkpoint
  check_name(name)
  folder = root() / name
  if not (folder / VARIABLES_FILE).exists():
    raise FileNotFoundError(f"{folder / VARIABLES_FILE} not found: reference model {name!r} is not installed "
                            f"(the package data of this jaxcolor install is incomplete)")
  arts = checkpoint.load_run_artifacts(folder)
  card = json.loads((folder / CARD_FILE).read_text()) if (folder / CARD_FILE).exists() else {}
  return ReferenceModel(name, folder, arts.config, arts.bins, arts.prior, load_variables(folder / VARIABLES_FILE),
                        card)


def save_variables(path: str | os.PathLike, variables: Mapping[str, Any], dtype: str | None = None) -> None:
  """{"params": ..., "batch_stats": ...} -> one compressed .npz of the arrays, keyed by their '/'-joined paths.

  dtype="float16" stores floating arrays at half the size (`load_variables` returns them as float32)."""
  from flax import traverse_util
  flat = traverse_util.flatten_dict(_plain_tree(variables), sep=_SEP)
  if not flat:
    raise ValueError("no variables to save")
  cast = lambda v: v.astype(dtype) if dtype and np.issubdtype(v.dtype, np.floating) else v
  storage.write_atomic(path, lambda f: np.savez_compressed(f, **{k: cast(np.asarray(v)) for k, v in flat.items()}))


def load_variables(path: str | os.PathLike) -> dict[str, Any]:
  """Reads `save_variables` output (no pickle) -> nested {"params": ..., "batch_stats": ...} of numpy arrays."""
  from flax import traverse_util
  try:
    with np.load(storage.open_bytes(path), allow_pickle=False) as f:
      flat = {k: f[k].astype(np.float32) if f[k].dtype == np.float16 else f[k] for k in f.files}
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: not a jaxcolor variables file ({e})") from e
  nested = traverse_util.unflatten_dict(flat, sep=_SEP)
  nested.setdefault("batch_stats", {})
  if "params" not in nested:
    raise ValueError(f"{path}: holds no 'params/...' arrays")
  return nested


def _plain_tree(tree: Any) -> Any:
  """Nested plain dicts (flax FrozenDicts, Orbax dicts) with the leaves as they are (arrays, ShapeDtypeStruct)."""
  if isinstance(tree, Mapping):
    return {str(k): _plain_tree(v) for k, v in tree.items()}
  return tree if hasattr(tree, "shape") else np.asarray(tree)


def init_source(source: str) -> epath.Path:
  """`config.init_from` -> the folder holding its config.json / bins / prior (a reference model's or a run's)."""
  from jaxcolor import checkpoint
  if source in MODELS:
    return root() / source
  path = storage.path(source)
  if not (path / checkpoint.CONFIG_FILE).exists():
    raise ValueError(f"config.init_from={source!r} is neither a reference model ({', '.join(MODELS)}) nor a run "
                     f"directory (no {checkpoint.CONFIG_FILE} in {path})")
  return path


def load_init_variables(source: str) -> dict[str, Any]:
  """`config.init_from` (a reference model name or a run's workdir, newest checkpoint) -> its variables."""
  if source in MODELS:
    return load(source).variables
  from jaxcolor import checkpoint
  return checkpoint.restore_variables(init_source(source))[0]


def check_same_structure(loaded: Mapping[str, Any], expected: Mapping[str, Any], source: str) -> None:
  """Raises ValueError listing the first paths whose presence or shape differ between two variable trees."""
  from flax import traverse_util
  shapes = lambda tree: {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(_plain_tree(tree), sep=_SEP).items()}
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
  Everything else must match in presence and shape (`check_same_structure`).
  """
  from flax import traverse_util
  flat = lambda tree: traverse_util.flatten_dict(_plain_tree(tree), sep=_SEP)
  under = lambda key, prefix: key == prefix.rstrip(_SEP) or key.startswith(prefix.rstrip(_SEP) + _SEP)
  excluded = lambda key: any(under(key, e) for e in exclude)
  new, old = flat(fresh), flat(loaded)
  unused = [e for e in exclude if not any(under(k, e) for k in new)]
  if unused:
    raise ValueError(f"config.init_from_exclude: {', '.join(unused)} names no variable of this model")
  keep = lambda tree: traverse_util.unflatten_dict({k: v for k, v in tree.items() if not excluded(k)}, sep=_SEP)
  check_same_structure(keep(old), keep(new), source)
  return traverse_util.unflatten_dict({k: (v if excluded(k) else old[k]) for k, v in new.items()}, sep=_SEP)


def release_metrics(colorizer: Any, photos: Sequence[np.ndarray], hints: int = 0) -> dict[str, float]:
  """Mean PSNR (dB) and AuC (%) of full-resolution colorize outputs against the photos (the release check).

  Computed exactly as `colorize` produces outputs (host resize to the model's size, ab upsampled and merged
  with each photo's own L, uint8), so the number pins down the shipped weights and the whole inference path.
  hints > 0 (a hint-taking model): that many hints per photo read off the photo (`hint_file.from_truth`, seed 0),
  given as `colorize --hints` gives them.
  """
  from jaxcolor.colorspace import color
  from jaxcolor.evaluation import metrics
  from jaxcolor.inference import hint_file, merge
  given = None
  if hints:
    given = [hint_file.channels(hint_file.from_truth(p, hints), p.shape[:2], colorizer.size) for p in photos]
  abs_ = colorizer.predict_ab(list(photos), batch_size=len(photos), hints=given)
  psnrs, aucs = [], []
  for photo, ab in zip(photos, abs_):
    out, truth = merge.merge(photo, ab)[None], photo[None]  # (1, H, W, 3): the metrics are per example
    psnrs.append(float(metrics.psnr(out, truth)[0]))
    aucs.append(float(metrics.auc(color.rgb_to_l_ab(out)[1], color.rgb_to_l_ab(truth)[1])[0]))
  return {"psnr": float(np.mean(psnrs)), "auc": float(np.mean(aucs))}


def export(workdir: str, name: str, *, step: int | None = None, out_root: str | os.PathLike | None = None,
           card: Mapping[str, Any] | None = None, overwrite: bool = False, dtype: str | None = None) -> epath.Path:
  """Writes run `workdir` (checkpoint `step`, default newest) as reference model `name`; returns its folder.
  dtype="float16" ships the weights at half the size (see `save_variables`)."""
  from jaxcolor import checkpoint
  check_name(name)
  folder = storage.path(out_root or root()) / name
  if (folder / VARIABLES_FILE).exists() and not overwrite:
    raise FileExistsError(f"{folder / VARIABLES_FILE} exists; pass overwrite=True (--overwrite) to replace it")
  arts = checkpoint.load_run_artifacts(workdir)
  variables, saved_step = checkpoint.restore_variables(workdir, step)
  folder.mkdir(parents=True, exist_ok=True)
  # Where the training machine kept its TFDS builds says nothing about the model: ship the default.
  config = {**arts.config, "data_dir": "~/tensorflow_datasets"}
  checkpoint.save_run_artifacts(folder, config, arts.bins, arts.prior, overwrite=True)
  save_variables(folder / VARIABLES_FILE, variables, dtype)
  info = dict(card or {})
  info["step"] = int(saved_step)
  storage.write_atomic(folder / CARD_FILE, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
  return folder


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxcolor.inference.reference", description=__doc__.splitlines()[0])
  sub = p.add_subparsers(dest="command", required=True)
  e = sub.add_parser("export", help="write a training run into the package as a reference model")
  e.add_argument("--workdir", required=True)
  e.add_argument("--name", required=True, choices=sorted(MODELS))
  e.add_argument("--step", type=int, default=None)
  e.add_argument("--out_root", default=None, help="default: the package's reference_models folder")
  e.add_argument("--card", default=None, help="JSON file of training facts to record in card.json")
  e.add_argument("--overwrite", action="store_true")
  e.add_argument("--float16", action="store_true", help="store the weights as float16 (half the size)")
  sub.add_parser("list", help="the shipped models")
  args = p.parse_args(argv)
  if args.command == "list":
    for name, about in MODELS.items():
      folder = root() / name
      state = "installed" if (folder / VARIABLES_FILE).exists() else "missing"
      print(f"{name}{' (default)' if name == DEFAULT else ''}: {about} [{state}: {folder}]")
    return 0
  card = json.loads(storage.read_bytes(args.card)) if args.card else None
  folder = export(args.workdir, args.name, step=args.step, out_root=args.out_root, card=card,
                  overwrite=args.overwrite, dtype="float16" if args.float16 else None)
  print(f"wrote {folder}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
