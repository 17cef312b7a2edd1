"""Release the reference colorizers: evaluate two trained runs, draw their figures, ship them in the package.

    python -m experiments.reference_colorizers.release --accurate=RUN_A --vivid=RUN_V --data_dir=/tmp/jaxcolor_tfds

RUN_A / RUN_V are workdirs trained with configs/reference_accurate.py and configs/reference_vivid.py. Writes:
- jaxcolor/reference_models/<name>/: the exported model (`jaxcolor.inference.reference.export`), card.json (budget,
  metrics, the release check the tests replay), MODEL_CARD.md, curves.png (learning curves), samples.jpg;
- experiments/reference_colorizers/: results.md / results.json (every eval set, gray and tint baselines beside),
  figure.jpg (8 Kodak photos: L input | accurate | vivid | truth), figure_photos256.jpg (8 held-out photos_256
  photos, the same columns) and curves.png.
Evaluation (`jaxcolor.evaluate.evaluate_run`): the model sees each photo at its inference size; metrics at the
set's size. Kodak24 and McMaster at 256 px, Tiny-ImageNet val at 64 px, the held-out 5% of photos_256 at 256 px.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxcolor import evaluate, run_dir
from jaxcolor.losses import objective
from jaxcolor.inference import reference
from jaxcolor.inference.colorizer import Colorizer
from jaxcolor.models import pretrained

HERE = pathlib.Path(__file__).parent
EVALSETS = (("kodak24", 256), ("mcmaster", 256), ("tiny_imagenet_64", 64), ("photos_256", 256))
COLUMNS = (("psnr", "PSNR dB", 2), ("ssim", "SSIM", 4), ("auc", "AuC %", 2), ("colorfulness", "colorfulness", 2),
           ("delta_colorfulness_of_means", "dCF", 2), ("hue_accuracy_balanced", "hue % (balanced)", 1),
           ("ab_mae", "ab MAE", 2))
RELEASE_PHOTOS = ("kodim01.png", "kodim03.png", "kodim05.png", "kodim14.png")  # the tests replay these
FIGURE_PHOTOS = ("kodim01.png", "kodim03.png", "kodim05.png", "kodim07.png", "kodim14.png", "kodim17.png",
                 "kodim20.png", "kodim23.png")
CURVE_METRICS = (("psnr", "PSNR dB"), ("auc", "AuC %"), ("colorfulness", "colorfulness"),
                 ("hue_accuracy_balanced", "hue % (balanced)"))


def hardware() -> str:
  model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor() or platform.machine())
  return f"{model}, {os.cpu_count()} cores (CPU only)"


def curves(workdir: str) -> dict[str, Any]:
  """In-training evaluations (held-out photos_256 at the training size) and the wall time from TensorBoard."""
  import tensorflow as tf
  from tensorboard.backend.event_processing import event_accumulator
  ea = event_accumulator.EventAccumulator(str(pathlib.Path(workdir) / "tensorboard"), size_guidance={"tensors": 0})
  ea.Reload()
  out: dict[str, Any] = {}
  tags = set(ea.Tags()["tensors"])
  for key, _ in CURVE_METRICS:
    for prefix in ("", "gray/", "tint/"):
      tag = f"eval/color_metrics/{prefix}{key}"
      events = ea.Tensors(tag) if tag in tags else []
      out[prefix + key] = [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events]
  out["colorfulness_gt"] = [(e.step, float(tf.make_ndarray(e.tensor_proto)))
                            for e in ea.Tensors("eval/color_metrics/colorfulness_gt")]
  out["wall_minutes"] = training_minutes([e.wall_time for e in ea.Tensors("train/loss")])
  return out


def training_minutes(wall_times: list[float]) -> float:
  """Minutes between the first and last logged step, less the time a stopped run was down: a gap over five
  times the median interval between logs is taken for a stop and left out."""
  gaps = np.diff(np.asarray(wall_times, np.float64))
  if not gaps.size:
    return 0.0
  return float(gaps[gaps <= 5 * np.median(gaps)].sum() / 60)


def plot_curves(runs: dict[str, dict[str, Any]], path: pathlib.Path, size: int, width: int = 1200,
                height: int = 260) -> None:
  """One panel per metric: each run's curve against training step, thin lines for gray, tint and truth."""
  colors = {"accurate": (31, 119, 180), "vivid": (214, 39, 40), "gray": (120, 120, 120), "tint": (200, 140, 60),
            "truth": (44, 160, 44)}
  panel_w, pad = width // len(CURVE_METRICS), 36
  img = Image.new("RGB", (width, height), "white")
  draw = ImageDraw.Draw(img)
  draw.font = ImageFont.load_default(size=12)  # Pillow's smaller default size drops the spaces between words
  for p, (key, label) in enumerate(CURVE_METRICS):
    x0 = p * panel_w
    series = {name: c[key] for name, c in runs.items()}
    series["gray"] = next(iter(runs.values()))["gray/" + key]
    series["tint"] = next(iter(runs.values())).get("tint/" + key, [])
    if key == "colorfulness":
      series["truth"] = next(iter(runs.values()))["colorfulness_gt"]
    xs = [s for pts in series.values() for s, _ in pts]
    ys = [v for pts in series.values() for _, v in pts]
    lo, hi = min(ys), max(ys)
    lo, hi = lo - 0.05 * (hi - lo + 1e-6), hi + 0.05 * (hi - lo + 1e-6)
    xmax = max(xs)
    sx = lambda s: x0 + pad + (s / xmax) * (panel_w - pad - 10)
    sy = lambda v: height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)
    draw.rectangle([x0 + pad, pad, x0 + panel_w - 10, height - pad], outline="black")
    draw.text((x0 + pad, 8), label, fill="black")
    for v in np.linspace(lo, hi, 5):
      draw.text((x0 + 2, sy(v) - 5), f"{v:.1f}", fill="black")
    draw.text((x0 + panel_w - 60, height - pad + 4), f"{xmax} steps", fill="black")
    for name, pts in series.items():
      pts = sorted(pts)
      line = [(sx(s), sy(v)) for s, v in pts]
      if len(line) > 1:
        draw.line(line, fill=colors[name], width=1 if name in ("gray", "tint", "truth") else 2)
      for x, y in line:
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colors[name])
  legend = [n for n in ("accurate", "vivid", "gray", "tint", "truth") if n in runs or n in ("gray", "tint", "truth")]
  for i, name in enumerate(legend):
    draw.text((pad + 90 * i, height - 16), f"-- {name}", fill=colors[name])
  draw.text((pad + 90 * len(legend), height - 16), f"against training step; held-out photos_256 at {size} px",
            fill="black")
  img.save(path)


def sample_sheet(colorizers: dict[str, Colorizer], photos: list[np.ndarray], path: pathlib.Path,
                 tile: int = 192) -> None:
  """One photo per row: L (input) | each model (full-resolution colorize output) | ground truth."""
  from jaxcolor.inference import merge
  columns = {"L (input)": [np.repeat(np.asarray(Image.fromarray(p).convert("L"))[..., None], 3, -1) for p in photos]}
  for name, c in colorizers.items():
    columns[name] = [merge.merge(p, ab) for p, ab in zip(photos, c.predict_ab(photos, batch_size=len(photos)))]
  columns["ground truth"] = photos
  label_h = 16
  grid = Image.new("RGB", (tile * len(columns), label_h + tile * len(photos)), "white")
  draw = ImageDraw.Draw(grid)
  for c, (name, images) in enumerate(columns.items()):
    draw.text((c * tile + 4, 2), name, fill="black")
    for r, image in enumerate(images):
      grid.paste(Image.fromarray(image).resize((tile, tile), Image.LANCZOS), (c * tile, label_h + r * tile))
  grid.save(path, quality=90)


def held_out_photos(colorizer: Colorizer, data_dir: str, count: int, every: int = 29) -> list[np.ndarray]:
  """`count` photos of photos_256's held-out 5% (256 px center crops, as evaluated), every `every`-th one."""
  from jaxcolor.data import input_pipeline
  from jaxcolor.evaluation import evaluators
  cfg = evaluators.EvalSpec("figure", dataset="photos_256", size=256).data_config(colorizer.config)
  cfg.data_dir, cfg.eval_batch_size = data_dir, 1
  out = []
  for i, batch in enumerate(input_pipeline.eval_dataset(cfg).dataset.as_numpy_iterator()):
    if i % every == 0 and batch["mask"][0]:
      out.append(batch["image"][0])
    if len(out) == count:
      break
  return out


def evaluate_all(source: str, data_dir: str, cache: pathlib.Path,
                 max_batches: int = 0) -> dict[str, dict[str, dict[str, float]]]:
  """{eval set label: {row: metrics}}, each set cached as JSON under `cache`."""
  out = {}
  for dataset, size in EVALSETS:
    label = f"{dataset} @ {size} px"
    f = cache / f"{dataset}_{size}.json"
    if not f.exists():
      rows = evaluate.evaluate_run(source, dataset, data_dir=data_dir, size=size, batch_size=16,
                                   max_batches=max_batches)
      cache.mkdir(parents=True, exist_ok=True)
      f.write_text(json.dumps(rows, indent=1))
    out[label] = json.loads(f.read_text())
  return out


def _row(values: dict[str, float]) -> str:
  return " | ".join(f"{values[k]:.{d}f}" for k, _, d in COLUMNS)


BASELINES = ("grayscale (ab = 0)", "constant tint (ab = 6, 16)")


def tables(results: dict[str, dict[str, Any]]) -> str:
  lines = []
  for label in next(iter(results.values())).keys():
    lines += [f"**{label}**", "", "| model | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
              "|---|" + "---|" * len(COLUMNS)]
    for name, res in results.items():
      lines.append(f"| {name} | {_row(res[label]['model'])} |")
    rows = next(iter(results.values()))[label]
    for baseline in BASELINES:
      lines.append(f"| {baseline} | {_row(rows[baseline])} |")
    lines.append(f"| ground truth | inf | 1 | 100 | {rows[BASELINES[0]]['colorfulness_gt']:.2f} | 0 | 100 | 0 |")
    lines.append("")
  return "\n".join(lines)


def architecture(cfg: Any) -> str:
  """The network in a few words, from its config."""
  kw = cfg.model_kwargs
  if cfg.model == "efficientnet_unet":
    return f"EfficientNet-{kw.variant.title()} encoder, decoder {list(kw.get('decoder_features', (128, 64, 48, 32)))}"
  return f"features {list(kw.features)}" if "features" in kw else "default widths"


def init_note(cfg: Any) -> str:
  """Where training started, as the card says it."""
  if cfg.get("pretrained") and any(cfg.pretrained.to_dict().values()):
    return "the ImageNet encoder above, a random decoder" + (
        " (the output projection at zero: the untrained model is the gray baseline)" if cfg.head == "regression" else "")
  if not cfg.get("init_from"):
    zero = " (the output projection at zero: an untrained model is the gray baseline)" if cfg.head == "regression" else ""
    return "random initialization" + zero
  skip = f", all but {', '.join(cfg.init_from_exclude)} (freshly initialized)" if cfg.get("init_from_exclude") else ""
  return f"the weights of `{pathlib.Path(cfg.init_from).name}`{skip}; the prior estimated from the training data"


def recipe_facts(cfg: Any) -> dict[str, Any]:
  """The training settings a card states: data, sizes, batch, learning rate (and per-prefix factors), warm-up."""
  return dict(data=f"{cfg.dataset} mixed with " + ", ".join(f"{d} ({w:.0%})" for d, w in cfg.get("mix_datasets") or ()),
              image_size=cfg.image_size, inference_size=cfg.get("inference_size") or cfg.image_size,
              batch=cfg.batch_size, learning_rate=cfg.learning_rate, warmup_steps=cfg.warmup_steps,
              lr_note="".join(f"; `{p}` at {m}x" for p, m in cfg.get("lr_multipliers") or ()))


def loss_terms(cfg: Any) -> str:
  """The objective as trained (`objective.terms`): "1 x l1 + 0.02 x colorfulness"; a lone term by its name."""
  terms = objective.terms(cfg)
  return terms[0][0] if len(terms) == 1 and terms[0][1] == 1.0 else " + ".join(f"{w:g} x {n}" for n, w, _ in terms)


def ship(wd: str, name: str, card: dict[str, Any], card_text: str, figures: dict[str, pathlib.Path], *,
         out_root: str | None, float16: bool) -> None:
  """Exports run `wd` at checkpoint card["step"] as shipped model `name`: card.json, MODEL_CARD.md (`card_text`)
  and its figures ({file name in the model's folder: source file})."""
  folder = reference.export(wd, name, step=card["step"], card=card, overwrite=True, out_root=out_root,
                            dtype="float16" if float16 else None)
  write_docs(folder, card_text, figures)
  print(f"{name}: {folder} (step {card['step']}, release check {card['release_check']})")


def write_docs(folder: pathlib.Path, card_text: str, figures: dict[str, pathlib.Path]) -> None:
  """A shipped model's MODEL_CARD.md (`card_text`) and its figures ({file name in `folder`: source file})."""
  (folder / "MODEL_CARD.md").write_text(card_text)
  for target, source in figures.items():
    (folder / target).write_bytes(source.read_bytes())


def model_card(name: str, card: dict[str, Any], table: str) -> str:
  c = card
  return f"""# jaxcolor reference colorizer: `{name}`

{run_dir.REFERENCE_MODELS[name]}.

    python -m jaxcolor.colorize photo.jpg --model={name}            # full resolution, into ./colorized
    python -m jaxcolor.evaluate --model={name} --dataset=kodak24 --size=256 --out=/tmp/eval_{name}

## Training
- Recipe: `configs/{c['recipe']}` (model `{c['model']}`, {c['architecture']}, {c['params_m']:.2f}M parameters;
  head `{c['head']}`, loss `{c['loss']}`{c['head_note']}).
- Encoder: {c['encoder']}
- Data: {c['data']}; {c['image_size']} px random resized crops (area 25-100%) and flips; grayscale photos removed.
- Steps: {c['step']} x batch {c['batch']} = {c['images']:,} images; Adam, learning rate {c['learning_rate']} with {c['warmup_steps']}
  warm-up steps and cosine decay{c['lr_note']}.
- Start: {c['init_note']}.
- Wall time: {c['wall_minutes']:.0f} min of training on {c['hardware']}; {c['budget_note']}
- Inference: the photo is resized to {c['inference_size']} px for the network; the predicted ab is upsampled to the
  photo's resolution and joined with the photo's own L (every detail of the input's lightness is kept).

## Metrics
Held-out photos only (none of them was trained on); the model sees each photo at {c['inference_size']} px, metrics at
the size named. Beside the models: leaving the photo gray (ab = 0) and one constant warm tint (ab = (6, 16), a
sepia filter), which scores near gray on PSNR and AuC; "hue % (balanced)" is the share of strongly colored
pixels (true chroma >= 20) given a hue within 45 degrees (chroma >= 8), averaged over six 60-degree hue sectors
(`jaxcolor.evaluation.metrics`). `python -m experiments.reference_colorizers.release`.

{table}
Release check (tests/test_reference.py replays it on every install): Kodak {', '.join(c['release_check']['photos'])}
at full resolution through `colorize`: PSNR {c['release_check']['psnr']:.3f} dB, AuC {c['release_check']['auc']:.3f} %.

## Learning curves
![learning curves](curves.png)

In-training evaluation on the held-out 5% of photos_256 (237 photos) at {c['image_size']} px (both models; thin lines: grayscale baseline, ground truth).

## Samples
![Kodak samples](samples.jpg)

L input | accurate | vivid | ground truth, Kodak24 (full-resolution outputs, shown at 192 px).

## Limits
Trained on a 2-core CPU, with the budget above. {c['limits']} Weights: `variables.npz` (numpy arrays, read
without pickle{c['storage_note']}), with the run's `config.json`{' and its `bins.npz` / `prior.npz`' if c['head'] == 'classification' else ''}.
"""


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--accurate", required=True, help="workdir trained with configs/reference_accurate.py")
  p.add_argument("--vivid", required=True, help="workdir trained with configs/reference_vivid.py")
  p.add_argument("--data_dir", default="~/tensorflow_datasets")
  p.add_argument("--data_root", default=os.environ["JAXCOLOR_DATA"], help="holds eval/kodak24 (the sample sheet)")
  p.add_argument("--note", action="append", default=[], metavar="NAME=TEXT",
                 help="a model's budget as the card states it (parts, inherited training), e.g. vivid='...'")
  p.add_argument("--limits", action="append", default=[], metavar="NAME=TEXT",
                 help="what the samples show a model gets wrong, for its card")
  p.add_argument("--float16", action="store_true", help="ship the weights as float16 (half the size)")
  p.add_argument("--out_dir", default=str(HERE), help="results, figures (default: this folder)")
  p.add_argument("--package_root", default=None, help="where models are exported (default: the package)")
  p.add_argument("--max_batches", type=int, default=0, help="per eval set; 0: all (smoke runs: 1)")
  a = p.parse_args()
  notes = dict(n.split("=", 1) for n in a.note)
  limits = dict(n.split("=", 1) for n in a.limits)
  out_dir = pathlib.Path(a.out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  runs = {"accurate": a.accurate, "vivid": a.vivid}
  recipes = {"accurate": "reference_accurate.py", "vivid": "reference_vivid.py"}
  results = {name: evaluate_all(wd, a.data_dir, pathlib.Path(wd) / "release_eval", a.max_batches)
             for name, wd in runs.items()}
  run_curves = {name: curves(wd) for name, wd in runs.items()}
  table = tables(results)
  (out_dir / "results.md").write_text(table)
  (out_dir / "results.json").write_text(json.dumps({"results": results, "curves": run_curves}, indent=1))
  plot_curves(run_curves, out_dir / "curves.png", size=int(Colorizer(a.accurate).config.image_size))
  kodak = pathlib.Path(a.data_root) / "eval" / "kodak24"
  colorizers = {name: Colorizer(wd) for name, wd in runs.items()}
  sample_sheet(colorizers, [np.asarray(Image.open(kodak / f).convert("RGB")) for f in FIGURE_PHOTOS], out_dir / "figure.jpg")
  sample_sheet(colorizers, held_out_photos(colorizers["accurate"], a.data_dir, 8), out_dir / "figure_photos256.jpg")
  photos = [np.asarray(Image.open(kodak / f).convert("RGB")) for f in RELEASE_PHOTOS]
  for name, wd in runs.items():
    cfg = colorizers[name].config
    import jax
    n_params = sum(x.size for x in jax.tree.leaves(colorizers[name].variables["params"]))
    encoder = cfg.pretrained.to_dict().get("efficientnet") if "pretrained" in cfg else None
    card = dict(
        recipe=recipes[name], model=cfg.model, architecture=architecture(cfg), params_m=n_params / 1e6,
        head=cfg.head, loss=loss_terms(cfg),
        head_note=(f"; 313 bins, rebalanced (lambda {cfg.rebalance_lambda}), {cfg.decoding} decoding at "
                   f"T = {cfg.temperature}" if cfg.head == "classification" else ""),
        encoder=(f"EfficientNet-{cfg.model_kwargs.variant.title()}, started from {pretrained.SOURCE}; the shipped "
                 f"weights are its fine-tuned version (Apache-2.0)." if encoder else "none (trained from scratch)."),
        images=colorizers[name].step * cfg.batch_size, **recipe_facts(cfg), wall_minutes=run_curves[name]["wall_minutes"], hardware=hardware(),
        budget_note=notes.get(name, "one run."), init_note=init_note(cfg), metrics=results[name],
        limits=limits.get(name, ""), storage_note=", float16" if a.float16 else "",
        release_check=dict(photos=list(RELEASE_PHOTOS), **reference.release_metrics(colorizers[name], photos)),
        step=colorizers[name].step)
    ship(wd, name, card, model_card(name, card, table), {"curves.png": out_dir / "curves.png",
         "samples.jpg": out_dir / "figure.jpg"}, out_root=a.package_root, float16=a.float16)
  print(table)


if __name__ == "__main__":
  main()
