"""Reference colorizers shipped inside the package: loading one, its release check, export from a run.

    python -m jaxcolor.colorize photo.jpg --out=colorized          # the default reference model
    python -m jaxcolor.colorize photo.jpg --out=colorized --model=accurate
    python -m jaxcolor.inference.reference export --workdir=RUN --name=vivid [--step=N]   # (maintainers) ship a run

Each model is a folder `jaxcolor/reference_models/<name>/` installed as package data; the names, the folder and
its files are `jaxcolor.run_dir`'s (`REFERENCE_MODELS`, `reference_folder`):
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
import json
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from jaxcolor import run_dir, storage

DEFAULT = "vivid"  # what `colorize` uses without --workdir or --model
CARD_FILE = "card.json"


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
  """Loads the shipped model `name`; an unknown name, a missing or a damaged file fails naming it."""
  folder = run_dir.reference_folder(name)
  arts = run_dir.read_artifacts(folder)
  card_path = storage.path(folder) / CARD_FILE
  card = json.loads(storage.read_bytes(card_path)) if card_path.exists() else {}
  return ReferenceModel(name, folder, arts.config, arts.bins, arts.prior, run_dir.read_variables(folder), card)


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
  dtype="float16" ships the weights at half the size (`run_dir.write_variables`)."""
  run_dir.check_reference_name(name)
  folder = storage.path(out_root or run_dir.reference_root()) / name
  if (folder / run_dir.VARIABLES_FILE).exists() and not overwrite:
    raise FileExistsError(f"{folder / run_dir.VARIABLES_FILE} exists; pass overwrite=True (--overwrite) to replace it")
  arts = run_dir.read_artifacts(workdir)
  variables, saved_step = run_dir.restore_variables(workdir, step)
  # Where the training machine kept its TFDS builds says nothing about the model: ship the default.
  config = {**arts.config, "data_dir": "~/tensorflow_datasets"}
  run_dir.write_artifacts(folder, config, arts.bins, arts.prior, overwrite=True)
  run_dir.write_variables(folder, variables, dtype)
  write_card(folder, {**(card or {}), "step": int(saved_step)})
  return folder


def write_card(folder: str | os.PathLike, card: Mapping[str, Any]) -> None:
  """A shipped model's card.json (release facts and the release check the tests replay)."""
  text = json.dumps(dict(card), indent=2, sort_keys=True) + "\n"
  storage.write_atomic(storage.path(folder) / CARD_FILE, text.encode())


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxcolor.inference.reference", description=__doc__.splitlines()[0])
  sub = p.add_subparsers(dest="command", required=True)
  e = sub.add_parser("export", help="write a training run into the package as a reference model")
  e.add_argument("--workdir", required=True)
  e.add_argument("--name", required=True, choices=sorted(run_dir.REFERENCE_MODELS))
  e.add_argument("--step", type=int, default=None)
  e.add_argument("--out_root", default=None, help="default: the package's reference_models folder")
  e.add_argument("--card", default=None, help="JSON file of training facts to record in card.json")
  e.add_argument("--overwrite", action="store_true")
  e.add_argument("--float16", action="store_true", help="store the weights as float16 (half the size)")
  sub.add_parser("list", help="the shipped models")
  args = p.parse_args(argv)
  if args.command == "list":
    for name, about in run_dir.REFERENCE_MODELS.items():
      folder = run_dir.reference_root() / name
      state = "installed" if (folder / run_dir.VARIABLES_FILE).exists() else "missing"
      print(f"{name}{' (default)' if name == DEFAULT else ''}: {about} [{state}: {folder}]")
    return 0
  card = json.loads(storage.read_bytes(args.card)) if args.card else None
  folder = export(args.workdir, args.name, step=args.step, out_root=args.out_root, card=card,
                  overwrite=args.overwrite, dtype="float16" if args.float16 else None)
  print(f"wrote {folder}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
