"""What every study under experiments/ does: train a list of configs, evaluate them, write tables and a figure.

A study script (`experiments/<study>/run.py`) builds its runs as (name, config) pairs from the configs in
configs/, then calls `run_study`. Each run trains in ROOT/<name> with `jaxcolor.train.train_and_evaluate`
(so an interrupted study resumes where it stopped and a finished run is not retrained), is evaluated with
`jaxcolor.evaluate.evaluate_run` on each (dataset, size) pair, and the study writes into its own folder:

- results.json: per run, the training budget (steps, batch, images, wall time, device) and every metric;
- results.md: one markdown table per evaluation set (with the grayscale baseline) and the budget table;
- figure.png: the same photos colorized by every run: gray input | run 1 | ... | ground truth.

Evaluations are cached per run in ROOT/<name>/eval/<dataset>_<size>.json, so rerunning the script only
recomputes what is missing.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import time
from typing import Any

import jax
import ml_collections
from absl import logging
import numpy as np
from PIL import Image, ImageDraw

from jaxcolor import colorize, evaluate
from jaxcolor.data import input_pipeline
from jaxcolor.train import train_and_evaluate

METRICS = ("psnr", "ssim", "auc", "colorfulness", "delta_colorfulness_of_means", "ab_mae")
HEADERS = ("PSNR dB", "SSIM", "AuC %", "colorfulness", "dCF", "ab MAE")
CLS_DECODINGS = "mode,mean,annealed_mean:0.2,annealed_mean:0.38,annealed_mean:0.6,annealed_mean:1.0"


@dataclasses.dataclass
class Run:
  name: str
  config: ml_collections.ConfigDict
  about: str = ""  # one line for the tables: what differs in this run


@dataclasses.dataclass(frozen=True)
class EvalSet:
  dataset: str  # a registered dataset name (jaxcolor.data.datasets)
  size: int  # square input size the model sees; metrics are computed at this size

  @property
  def label(self) -> str:
    return f"{self.dataset} @ {self.size} px"


def train(run: Run, root: pathlib.Path) -> dict[str, Any]:
  """Trains `run` in root/name unless it already reached total_steps; returns its budget record."""
  workdir = root / run.name
  record_file = workdir / "budget.json"
  if record_file.exists():
    record = json.loads(record_file.read_text())
    if record["steps"] == run.config.total_steps:
      return record
  start = time.perf_counter()
  state = train_and_evaluate(run.config, str(workdir))
  wall = time.perf_counter() - start
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  c = run.config
  record = dict(steps=int(c.total_steps), batch=int(c.batch_size), images=int(c.total_steps * c.batch_size),
                image_size=int(c.image_size), progressive_sizes=[list(p) for p in c.progressive_sizes],
                wall_s=round(wall, 1), params=n_params, device=_device(),
                jax=jax.__version__, date=time.strftime("%Y-%m-%d"))
  record_file.write_text(json.dumps(record, indent=1))
  return record


def _device() -> str:
  d = jax.devices()[0]
  if d.platform == "cpu":
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
  return d.device_kind


def evaluate_one(run: Run, root: pathlib.Path, evalset: EvalSet, data_dir: str,
                 batch_size: int = 16) -> dict[str, dict[str, float]]:
  """{row: {metric: value}} of one run on one eval set (cached); classification sweeps CLS_DECODINGS."""
  out = root / run.name / "eval" / f"{evalset.dataset}_{evalset.size}.json"
  if out.exists():
    return json.loads(out.read_text())
  decodings = CLS_DECODINGS if run.config.head == "classification" else ""
  rows = evaluate.evaluate_run(str(root / run.name), evalset.dataset, data_dir=data_dir, size=evalset.size,
                               model_size=evalset.size,
                               batch_size=batch_size, decodings=decodings)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(rows, indent=1))
  return rows


def _fmt(values: dict[str, float]) -> str:
  return " | ".join(f"{values[m]:.2f}" if m != "ssim" else f"{values[m]:.4f}" for m in METRICS)


def tables(runs: list[Run], results: dict[str, Any], evalsets: list[EvalSet]) -> str:
  """Markdown: the budget table, then one metrics table per eval set (grayscale baseline last)."""
  lines = ["| run | what | params | steps x batch | train size | wall time | device |", "|---|---|---|---|---|---|---|"]
  for run in runs:
    b = results[run.name]["budget"]
    size = "->".join(str(s) for _, s in b["progressive_sizes"]) if b["progressive_sizes"] else str(b["image_size"])
    lines.append(f"| {run.name} | {run.about} | {b['params'] / 1e6:.2f}M | {b['steps']} x {b['batch']} | {size} | "
                 f"{b['wall_s'] / 60:.1f} min | {b['device']} |")
  for es in evalsets:
    lines += ["", f"**{es.label}**", "", "| run | decoding | " + " | ".join(HEADERS) + " |",
              "|---|---|" + "---|" * len(HEADERS)]
    baselines: dict[str, dict[str, float]] = {}
    for run in runs:
      rows = results[run.name]["eval"][es.label]
      for row, values in rows.items():
        if not row.startswith("model"):  # a baseline (gray, constant tint): the same for every run
          baselines[row] = values
          continue
        decoding = row.removeprefix("model").strip(" ()") or "-"
        lines.append(f"| {run.name} | {decoding} | {_fmt(values)} |")
    for row, values in baselines.items():
      if all(m in values for m in METRICS):  # results from before a baseline existed lack it
        lines.append(f"| {row} | - | {_fmt(values)} |")
    gray = baselines["grayscale (ab = 0)"]
    lines.append(f"| ground truth | - | inf | 1 | 100 | {gray['colorfulness_gt']:.2f} | 0 | 0 |")
  return "\n".join(lines)


LABEL_HEIGHT = 14  # px of the header row naming each column


def figure(runs: list[Run], root: pathlib.Path, evalset: EvalSet, data_dir: str, path: pathlib.Path,
           num_images: int = 6, tile: int = 128) -> None:
  """Grid: a header row, then one row per photo of `evalset`; columns gray | each run (its config's decoding) |
  truth."""
  cfg = ml_collections.ConfigDict(runs[0].config.to_dict())
  cfg.dataset, cfg.data_dir, cfg.eval_image_size, cfg.eval_batch_size = evalset.dataset, data_dir, evalset.size, 1
  data = input_pipeline.eval_dataset(cfg).dataset.as_numpy_iterator()
  photos = [b["image"][0] for _, b in zip(range(num_images), data)]
  columns = {"L (input)": [np.repeat(np.asarray(Image.fromarray(p).convert("L"))[..., None], 3, -1) for p in photos]}
  for run in runs:
    model = colorize.Colorizer(str(root / run.name), size=evalset.size)
    columns[run.name] = [colorize.merge(p, ab) for p, ab in zip(photos, model.predict_ab(photos, batch_size=1))]
  columns["ground truth"] = photos
  grid = Image.new("RGB", (tile * len(columns), LABEL_HEIGHT + tile * num_images), "white")
  draw = ImageDraw.Draw(grid)
  for c, (name, images) in enumerate(columns.items()):
    draw.text((c * tile + 2, 1), name[: tile // 6], fill="black")
    for r, image in enumerate(images):
      grid.paste(Image.fromarray(image).resize((tile, tile), Image.BICUBIC), (c * tile, LABEL_HEIGHT + r * tile))
  path.parent.mkdir(parents=True, exist_ok=True)
  grid.save(path)


def run_study(runs: list[Run], evalsets: list[EvalSet], *, root: str, data_dir: str, out_dir: pathlib.Path,
              figure_set: EvalSet | None = None) -> dict[str, Any]:
  """Trains, evaluates, and writes results.json / results.md / figure.png into `out_dir`."""
  logging.set_verbosity(logging.INFO)  # the trainer's progress lines (absl logs warnings only by default)
  root_path = pathlib.Path(root).expanduser()
  names = [r.name for r in runs]
  if len(set(names)) != len(names):
    raise ValueError(f"run names must be unique, got {names}")
  results: dict[str, Any] = {}
  for run in runs:
    run.config.data_dir = data_dir
    results[run.name] = {"about": run.about, "budget": train(run, root_path)}
  for run in runs:
    results[run.name]["eval"] = {es.label: evaluate_one(run, root_path, es, data_dir) for es in evalsets}
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / "results.json").write_text(json.dumps(results, indent=1))
  (out_dir / "results.md").write_text(tables(runs, results, evalsets) + "\n")
  if figure_set is not None:
    figure(runs, root_path, figure_set, data_dir, out_dir / "figure.png")
  print(tables(runs, results, evalsets))
  return results

