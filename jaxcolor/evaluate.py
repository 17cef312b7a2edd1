"""Evaluate a trained run or a reference model on a dataset: python -m jaxcolor.evaluate --workdir=RUN --dataset=NAME.

    python -m jaxcolor.evaluate --workdir=/tmp/unet_cls --dataset=kodak24 --data_dir=/tmp/tfds \
        [--step=N] [--size=256] [--model_size=64] [--batch_size=8] [--decodings=annealed_mean:0.38,mode,mean]
        [--out=DIR]
    python -m jaxcolor.evaluate --model=vivid --dataset=kodak24 --size=256 --out=/tmp/eval_vivid

Metrics are computed on the photos at --size; the model sees them at --model_size (default: the size it is
meant to run at), and its ab is upsampled to --size, as `colorize` does for full-resolution photos.

Reports PSNR, SSIM, AuC, colorfulness (prediction and ground truth), dCF, balanced hue accuracy and ab errors
(jaxcolor.evaluation.metrics) for the model and, beside it, two baselines: gray (ab = 0) and one constant warm
tint (ab = (6, 16)), which a model that does not know what it colors barely beats. Classification runs can sweep decodings in one run:
`--decodings` takes `mode`, `mean` and `annealed_mean:T` entries. Prints a markdown table and writes it with a
JSON file to --out (default RUN/eval); existing result files are kept unless --overwrite. RUN, --data_dir and
--out may be gs:// URLs (`jaxcolor.storage`).
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence


from jaxcolor import run_dir, storage
from jaxcolor.colorspace import quantize
from jaxcolor.data import input_pipeline
from jaxcolor.evaluation import evaluators
from jaxcolor.inference.colorizer import Colorizer, add_flip_flags

COLUMNS = ("psnr", "ssim", "auc", "colorfulness", "delta_colorfulness_of_means", "hue_accuracy_balanced", "ab_mae",
           "ab_mse_128")
BASELINE_ROWS = {"gray": "grayscale (ab = 0)", "tint": "constant tint (ab = 6, 16)"}


def parse_decodings(text: str) -> list[tuple[str, float | None]]:
  """"annealed_mean:0.38,mode" -> [("annealed_mean", 0.38), ("mode", None)]."""
  out = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    name, _, temp = item.partition(":")
    if name not in quantize.DECODINGS:
      raise ValueError(f"unknown decoding {name!r} in --decodings; choose one of: {', '.join(quantize.DECODINGS)} "
                       "(annealed_mean:T for a temperature)")
    default_t = quantize.DEFAULT_TEMPERATURE if name == "annealed_mean" else None
    out.append((name, float(temp) if temp else default_t))
  return out


def load_colorizer(source: str, *, step: int | None = None, size: int | None = None,
                   flip: bool | None = None) -> Colorizer:
  """A reference model name (`jaxcolor.run_dir.REFERENCE_MODELS`) or a run's workdir -> its Colorizer."""
  if source in run_dir.REFERENCE_MODELS:
    return Colorizer.reference(source, size=size, flip=flip)
  return Colorizer(source, step=step, size=size, flip=flip)


def evaluate_run(workdir: str, dataset: str, *, data_dir: str, step: int | None = None, size: int | None = None,
                 model_size: int | None = None, batch_size: int = 8, split: str | None = None,
                 decodings: str = "", max_batches: int = 0, hint_counts: Sequence[int] = (),
                 hint_seed: int = 0, propagation=None, flip: bool | None = None) -> dict[str, dict[str, float]]:
  """{row name: {metric: value}}: the model under each decoding, and the baselines (`BASELINE_ROWS`): gray
  (ab = 0) and a constant warm tint (ab = (6, 16)).

  `workdir`: a run directory or a reference model name. Photos are scored at `size` (default: the model's
  input size); the model sees them at `model_size` (default: its inference_size, else its training size),
  its ab upsampled to `size`. `hint_counts` (a model that takes color hints): one row per number of hints
  ("model (N hints)"), simulated from each photo's own colors, its draws keyed by `hint_seed` and the photo
  (`Colorizer.predictor`, `jaxcolor.hints.photo_keys`: the same hints whatever the batch size);
  with `propagation` (a `jaxcolor.hint_propagation.Propagation`) also "model (N hints, propagated)" for N > 0.
  flip: average with the mirrored photo's prediction (default: the model's config.inference_flip).
  """
  run = load_colorizer(workdir, step=step, size=model_size, flip=flip)
  # The photos as a training run's evaluation of that dataset reads them (its own held-out split when it is the
  # run's dataset), at `size`.
  cfg = evaluators.EvalSpec("evaluate", dataset=dataset, split=split, size=int(size or run.size)).data_config(run.config)
  cfg.data_dir, cfg.eval_batch_size, cfg.batch_size = data_dir, batch_size, batch_size
  sweep = parse_decodings(decodings) if run.task.head == "classification" and decodings else [(None, None)]
  counts = [int(n) for n in hint_counts] or [None]
  spread = [None] if propagation is None else [None, propagation]
  sweep = [(d, t, n, p) for d, t in sweep for n in counts for p in spread if p is None or n]
  # One pass over the photos, batch by batch, every setting's evaluator updated from the same batch.
  evs = [evaluators.get_evaluator("color_metrics") for _ in sweep]
  fns = [functools.partial(run.predictor(d, t, hint_points=n or 0, hint_seed=hint_seed, propagation=p),
                           run.variables)
         for d, t, n, p in sweep]  # (a model without hints refuses them here, before reading any photo)
  data = input_pipeline.eval_dataset(cfg)
  limit = max_batches or data.num_steps
  for _, batch in zip(range(limit), data.dataset.as_numpy_iterator()):
    for ev, fn in zip(evs, fns):
      ev.update(fn, batch)
  rows: dict[str, dict[str, float]] = {}
  baselines: dict[str, dict[str, float]] = {}
  prefixes = tuple(f"{b}/" for b in BASELINE_ROWS)
  for (decoding, temperature, count, spread_by), ev in zip(sweep, evs):
    values = dict(ev.result())
    settings = [] if decoding is None else [f"{decoding}{'' if temperature is None else f', T={temperature}'}"]
    settings += [] if count is None else [f"{count} hints"] + ([] if spread_by is None else ["propagated"])
    name = f"model ({', '.join(settings)})" if settings else "model"
    rows[name] = {k: float(v) for k, v in values.items() if not k.startswith(prefixes)}
    for key, label in BASELINE_ROWS.items():
      baselines[label] = {k[len(key) + 1:]: float(v) for k, v in values.items() if k.startswith(f"{key}/")}
      baselines[label].update(colorfulness_gt=float(values["colorfulness_gt"]),
                              num_examples=float(values["num_examples"]))
  rows.update(baselines)
  return rows


def markdown(rows: dict[str, dict[str, float]]) -> str:
  lines = ["| | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
  for name, values in rows.items():
    lines.append(f"| {name} | " + " | ".join(f"{values.get(c, float('nan')):.4g}" for c in COLUMNS) + " |")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", default=None, help="a training run directory")
  p.add_argument("--model", default=None, choices=sorted(run_dir.REFERENCE_MODELS),
                 help="a reference model shipped with jaxcolor")
  p.add_argument("--dataset", required=True, help="registered name, tfds:<name> or folder:<path>")
  p.add_argument("--data_dir", default="~/tensorflow_datasets")
  p.add_argument("--split", default=None)
  p.add_argument("--step", type=int, default=None)
  p.add_argument("--size", type=int, default=None, help="photo size the metrics are computed at (default: the "
                 "model's input size)")
  p.add_argument("--model_size", type=int, default=None, help="model input size (default: the model's "
                 "inference_size, else its training image_size)")
  add_flip_flags(p)
  p.add_argument("--batch_size", type=int, default=8)
  p.add_argument("--decodings", default="", help="classification sweep, e.g. annealed_mean:0.38,mode,mean")
  p.add_argument("--max_batches", type=int, default=0, help="0: the whole split")
  p.add_argument("--out", default=None, help="folder for results (default: WORKDIR/eval)")
  p.add_argument("--overwrite", action="store_true")
  args = p.parse_args(argv)
  if bool(args.workdir) == bool(args.model):
    p.error("give exactly one of --workdir (a trained run) or --model (a reference model)")
  if args.model and not args.out:
    p.error("--out is required with --model (results are written there)")
  source = args.workdir or args.model
  out = storage.path(args.out) if args.out else storage.path(args.workdir) / "eval"  # local or gs://
  stem = args.dataset.replace(":", "_").replace("/", "_") + (f"_step{args.step}" if args.step else "")
  json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
  if not args.overwrite and (json_path.exists() or md_path.exists()):
    print(f"{json_path} exists; pass --overwrite to replace it", file=sys.stderr)
    return 1
  rows = evaluate_run(source, args.dataset, data_dir=args.data_dir,
                      step=args.step, size=args.size, model_size=args.model_size, batch_size=args.batch_size,
                      split=args.split, decodings=args.decodings, max_batches=args.max_batches, flip=args.flip)
  table = markdown(rows)
  print(table)
  out.mkdir(parents=True, exist_ok=True)
  storage.write_atomic(json_path, json.dumps(rows, indent=2).encode())
  storage.write_atomic(md_path, (table + "\n").encode())
  return 0


if __name__ == "__main__":
  sys.exit(main())
