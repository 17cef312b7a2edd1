"""PSNR and AuC against the number of color hints, as Zhang et al. 2017's figure: python -m jaxcolor.evaluate_hints.

    python -m jaxcolor.evaluate_hints --model=guided --out=/tmp/hints_eval            # Kodak24 and photos_256
    python -m jaxcolor.evaluate_hints --workdir=RUN --datasets=kodak24 --counts=0,1,5,10 --references=accurate \
        --data_dir=/tmp/tfds --out=/tmp/hints_eval [--size=256] [--seed=0] [--max_batches=N] \
        [--propagation=network_share=1,lightness_sigma=0]

For each dataset (photos center-cropped to --size, the hint-taking model at its own input size), the model is
scored with N hints per photo for each N of --counts, the hints simulated from the photo's true colors as in
training (`jaxcolor.hints.HintSampler` with exactly N points), each photo's drawn from --seed and its own pixels
(`jaxcolor.hints.photo_keys`), so every run of the command, every model and every --batch_size sees the same
hints; each N > 0 also as colorize gives it ("N hints, propagated": part of the network's response to the hints
kept, and the hints' residuals carried by lightness and along L's edges; `jaxcolor.hint_propagation`;
--no_propagation leaves these rows out, --propagation changes its settings). --flip / --no_flip: test-time
mirroring (default: the model's config.inference_flip). Beside it: gray (ab = 0), the constant tint, and the
automatic --references (shipped models or run folders). Prints a markdown table, writes it with a JSON file and
draws hints_curve.png (PSNR and AuC against N, log-spaced) into --out; existing results are kept unless
--overwrite.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxcolor import evaluate, hint_propagation, run_dir, storage
from jaxcolor.inference.colorizer import add_flip_flags

COUNTS = (0, 1, 2, 5, 10, 20, 50)  # the paper's figure's axis, from 0
DATASETS = ("kodak24", "photos_256")
METRICS = (("psnr", "PSNR dB"), ("auc", "AuC %"))
PROPAGATED = ", propagated"
_SPREAD_COLOR = (230, 120, 0)
_COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (140, 86, 75), (120, 120, 120),
           (200, 140, 60)]


def hint_curve(source: str, *, datasets: Sequence[str] = DATASETS, counts: Sequence[int] = COUNTS,
               references: Sequence[str] = ("accurate",), data_dir: str = "~/tensorflow_datasets", size: int = 256,
               seed: int = 0, batch_size: int = 8, max_batches: int = 0,
               propagation: hint_propagation.Propagation | None = hint_propagation.Propagation(),
               flip: bool | None = None) -> dict[str, dict[str, dict[str, float]]]:
  """{dataset: {row: metrics}}: rows "N hints" for the network alone, "N hints, propagated" (N > 0) with the
  hints' residuals spread after it (`propagation`; None: those rows left out), then gray, tint and each
  reference. flip: the guided model's test-time mirroring (default: its config.inference_flip); the references
  use their own."""
  out = {}
  for dataset in datasets:
    kw = dict(data_dir=data_dir, size=size, batch_size=batch_size, max_batches=max_batches)
    rows = evaluate.evaluate_run(source, dataset, hint_counts=counts, hint_seed=seed, propagation=propagation,
                                 flip=flip, **kw)
    table = {f"{n} hints": rows[f"model ({n} hints)"] for n in counts}
    if propagation is not None:
      table.update({f"{n} hints, propagated": rows[f"model ({n} hints, propagated)"] for n in counts if n})
    table.update({label: rows[label] for label in evaluate.BASELINE_ROWS.values()})
    for ref in references:
      table[f"{ref} (automatic)"] = evaluate.evaluate_run(ref, dataset, **kw)["model"]
    out[dataset] = table
  return out


def markdown(results: dict[str, dict[str, dict[str, float]]]) -> str:
  """Rows: hint counts and baselines; columns: PSNR and AuC per dataset."""
  sets = list(results)
  head = "| | " + " | ".join(f"{d} {label}" for d in sets for _, label in METRICS) + " |"
  lines = [head, "|---|" + "---|" * (len(sets) * len(METRICS))]
  for row in results[sets[0]]:
    cells = [f"{results[d][row][k]:.2f}" if row in results[d] else "" for d in sets for k, _ in METRICS]
    lines.append(f"| {row} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def plot(results: dict[str, dict[str, dict[str, float]]], path, width: int = 900, height: int = 300) -> None:
  """One panel per (dataset, metric): the model's value against the number of hints (x: log(1 + N)), alone
  and propagated (the same at N = 0), the baselines and references as horizontal lines."""
  panels = [(d, k, label) for d in results for k, label in METRICS]
  panel_w, pad = width // len(panels), 40
  img = Image.new("RGB", (width, height), "white")
  draw = ImageDraw.Draw(img)
  draw.font = ImageFont.load_default(size=12)
  for p, (dataset, key, label) in enumerate(panels):
    rows = results[dataset]
    curve = [(int(name.split()[0]), v[key]) for name, v in rows.items() if name.endswith(" hints")]
    spread = [(int(name.split()[0]), v[key]) for name, v in rows.items() if name.endswith(PROPAGATED)]
    spread = [c for c in curve if c[0] == 0] + spread if spread else []
    flat = {name: v[key] for name, v in rows.items() if not name.endswith((" hints", PROPAGATED))}
    ys = [v for _, v in curve + spread] + list(flat.values())
    lo, hi = min(ys), max(ys)
    lo, hi = lo - 0.05 * (hi - lo + 1e-6), hi + 0.05 * (hi - lo + 1e-6)
    x0, xmax = p * panel_w, np.log1p(max(n for n, _ in curve))
    sx = lambda n: x0 + pad + np.log1p(n) / max(xmax, 1e-6) * (panel_w - pad - 10)
    sy = lambda v: height - pad - (v - lo) / (hi - lo) * (height - 2 * pad - 16)
    draw.rectangle([x0 + pad, pad, x0 + panel_w - 10, height - pad], outline="black")
    draw.text((x0 + pad, 8), f"{dataset}: {label}", fill="black")
    for v in np.linspace(lo, hi, 5):
      draw.text((x0 + 2, sy(v) - 6), f"{v:.1f}", fill="black")
    for n, _ in curve:
      draw.text((sx(n) - 4, height - pad + 4), str(n), fill="black")
    for i, (name, v) in enumerate(flat.items()):
      draw.line([(x0 + pad, sy(v)), (x0 + panel_w - 10, sy(v))], fill=_COLORS[(i + 1) % len(_COLORS)], width=1)
    for line, fill in ((curve, _COLORS[0]), (spread, _SPREAD_COLOR)):
      pts = [(sx(n), sy(v)) for n, v in sorted(line)]
      if len(pts) > 1:
        draw.line(pts, fill=fill, width=2)
      for x, y in pts:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=fill)
  first = next(iter(results.values()))
  legend = [("model with N hints (x: N)", _COLORS[0])]
  legend += [("propagated", _SPREAD_COLOR)] if any(n.endswith(PROPAGATED) for n in first) else []
  legend += [(name, _COLORS[(i + 1) % len(_COLORS)])
             for i, name in enumerate(n for n in first if not n.endswith((" hints", PROPAGATED)))]
  x = pad
  for name, fill in legend:
    draw.text((x, height - 16), f"-- {name}", fill=fill)
    x += draw.textlength(f"-- {name}") + 16
  img.save(path, format="PNG")


def _ints(text: str) -> list[int]:
  values = [int(s) for s in text.split(",") if s.strip()]
  if not values or min(values) < 0:
    raise argparse.ArgumentTypeError(f"expected comma-separated counts >= 0, got {text!r}")
  return values


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--workdir", default=None, help="a run trained with hints")
  p.add_argument("--model", default=None, choices=sorted(run_dir.REFERENCE_MODELS), help="a shipped model that takes hints")
  p.add_argument("--datasets", default=",".join(DATASETS))
  p.add_argument("--counts", type=_ints, default=list(COUNTS))
  p.add_argument("--references", default="accurate", help="automatic models beside it (names or run folders)")
  p.add_argument("--data_dir", default="~/tensorflow_datasets")
  p.add_argument("--size", type=int, default=256)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--batch_size", type=int, default=8)
  p.add_argument("--max_batches", type=int, default=0, help="0: whole splits")
  p.add_argument("--no_propagation", action="store_true", help="leave out the rows with the hints' residuals "
                 "propagated after the network (jaxcolor.hint_propagation)")
  p.add_argument("--propagation", default="", help="settings of the propagated rows changed from the defaults, "
                 "name=value,... (jaxcolor.hint_propagation.Propagation; e.g. lightness_sigma=0)")
  add_flip_flags(p)
  p.add_argument("--out", required=True)
  p.add_argument("--overwrite", action="store_true")
  args = p.parse_args(argv)
  if bool(args.workdir) == bool(args.model):
    p.error("give exactly one of --workdir (a run trained with hints) or --model (a shipped model)")
  out = storage.path(args.out)
  files = {k: out / f"hints_curve.{k}" for k in ("json", "md", "png")}
  if not args.overwrite and any(f.exists() for f in files.values()):
    print(f"{out} holds hints_curve results; pass --overwrite to replace them", file=sys.stderr)
    return 1
  try:
    propagation = None if args.no_propagation else hint_propagation.Propagation.parse(args.propagation)
    results = hint_curve(args.workdir or args.model, datasets=[d for d in args.datasets.split(",") if d],
                         counts=args.counts, references=[r for r in args.references.split(",") if r],
                         data_dir=args.data_dir, size=args.size, seed=args.seed, batch_size=args.batch_size,
                         max_batches=args.max_batches,
                         propagation=propagation,
                         flip=args.flip)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  table = markdown(results)
  print(table)
  out.mkdir(parents=True, exist_ok=True)
  storage.write_atomic(files["json"], json.dumps(results, indent=1).encode())
  storage.write_atomic(files["md"], (table + "\n").encode())
  storage.write_atomic(files["png"], lambda f: plot(results, f))
  print(f"wrote {files['md']}, {files['json']} and {files['png']}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
