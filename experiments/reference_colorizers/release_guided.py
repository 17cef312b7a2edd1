"""Release the user-guided reference colorizer: evaluate it against the number of hints, draw its figures, ship it.

    python -m experiments.reference_colorizers.release_guided --guided=RUN --data_dir=/tmp/jaxcolor_tfds
    python -m experiments.reference_colorizers.release_guided --guided=guided --data_dir=/tmp/jaxcolor_tfds

RUN is a workdir trained with configs/reference_guided.py, or with its second stage configs/reference_guided_192.py
(then `--stage1=STAGE1_RUN` puts the first stage's facts in the card); `--guided=guided` re-evaluates the shipped model
instead (when inference changed, not the weights: its weights and training facts stay, the rest is rewritten).
Writes:
- jaxcolor/reference_models/guided/: the exported model, card.json (budget, the hints table, the release check the
  tests replay: Kodak photos without hints and with 10 hints read off each photo), MODEL_CARD.md,
  hints_curve.png and samples.jpg;
- experiments/reference_colorizers/: guided_results.md / .json (PSNR and AuC against 0-50 hints on Kodak24 and
  held-out photos_256 at 256 px, gray, tint, `accurate` and `vivid` beside), guided_curve.png and
  guided_figure.jpg (L | no hints | 5 hints drawn: network, propagated | truth), guided_figure_photos256.jpg.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from experiments.reference_colorizers import release
from jaxcolor import evaluate_hints, hint_propagation, run_dir
from jaxcolor.inference import hint_file, merge, reference
from jaxcolor.inference.colorizer import Colorizer

HERE = pathlib.Path(__file__).parent
SHEET_HINTS = 5
CHECK_HINTS = 10


def hinted_sheet(colorizer: Colorizer, network: Colorizer, photos: list[np.ndarray], path: pathlib.Path,
                 tile: int = 192) -> None:
  """One photo per row: L | no hints | SHEET_HINTS hints read off the photo (drawn as squares in their color,
  ringed white and black), the network alone (`network`: propagate=False) | the same, propagated (`colorizer`,
  as colorize gives it) | ground truth."""
  given = [hint_file.from_truth(p, SHEET_HINTS) for p in photos]
  channels = [hint_file.channels(h, p.shape[:2], colorizer.size) for h, p in zip(given, photos)]
  auto = colorizer.predict_ab(photos, batch_size=len(photos))
  alone = network.predict_ab(photos, batch_size=len(photos), hints=channels)
  hinted = colorizer.predict_ab(photos, batch_size=len(photos), hints=channels)
  columns = {"L (input)": [np.repeat(np.asarray(Image.fromarray(p).convert("L"))[..., None], 3, -1) for p in photos],
             "no hints": [merge.merge(p, ab) for p, ab in zip(photos, auto)],
             f"{SHEET_HINTS} hints, network": [merge.merge(p, ab) for p, ab in zip(photos, alone)],
             f"{SHEET_HINTS} hints, propagated": [merge.merge(p, ab) for p, ab in zip(photos, hinted)],
             "ground truth": photos}
  label_h = 16
  grid = Image.new("RGB", (tile * len(columns), label_h + tile * len(photos)), "white")
  draw = ImageDraw.Draw(grid)
  for c, (name, images) in enumerate(columns.items()):
    draw.text((c * tile + 4, 2), name, fill="black")
    for r, image in enumerate(images):
      grid.paste(Image.fromarray(image).resize((tile, tile), Image.LANCZOS), (c * tile, label_h + r * tile))
      if c in (2, 3):
        h, w = image.shape[:2]
        for hint in given[r]:
          x, y = c * tile + (hint.x + 0.5) * tile / w, label_h + r * tile + (hint.y + 0.5) * tile / h
          draw.rectangle([x - 6, y - 6, x + 6, y + 6], fill=hint.rgb, outline="black", width=1)
          draw.rectangle([x - 5, y - 5, x + 5, y + 5], outline="white", width=1)
  grid.save(path, quality=90)


STAGE_FACTS = ("step", "image_size", "learning_rate", "warmup_steps", "wall_minutes", "budget_note")


def stage_facts(source: str) -> dict[str, Any]:
  """The training facts of the run a release fine-tuned (`--stage1`): a run's workdir or an earlier card.json."""
  path = pathlib.Path(source)
  if path.suffix == ".json":
    card = json.loads(path.read_text())
    return {k: card[k] for k in STAGE_FACTS}
  import ml_collections
  facts = release.recipe_facts(ml_collections.ConfigDict(run_dir.read_config(source)))
  return dict(step=run_dir.restore_variables(source)[1], image_size=facts["image_size"],
              learning_rate=facts["learning_rate"], warmup_steps=facts["warmup_steps"],
              wall_minutes=release.curves(source)["wall_minutes"], budget_note="")


def _start(c: dict[str, Any]) -> str:
  first = "the shipped `accurate` weights (the branch at zero: step 0 is `accurate`)"
  if not c.get("stage1"):
    return first + "."
  s = c["stage1"]
  return (f"stage 1 (`configs/reference_guided.py`): {s['step']:,} steps at {s['image_size']} px from {first}, "
          f"learning rate {s['learning_rate']}, {s['warmup_steps']} warm-up steps, {s['wall_minutes']:.0f} min. "
          f"{s['budget_note']} This release is stage 2 (`configs/reference_guided_192.py`), which continues "
          "from stage 1's weights as below.")


def _total_steps(c: dict[str, Any]) -> str:
  return f"{c['step'] + c['stage1']['step']:,}" if c.get("stage1") else f"{c['step']:,}"


def model_card(card: dict[str, Any], table: str) -> str:
  c = card
  flip_note = (" The network colors each photo and its mirror image and averages the two\n(`config.inference_flip`; "
               "`--no_flip` runs it once)." if c.get("inference_flip") else "")
  share = hint_propagation.Propagation().network_share
  return f"""# jaxcolor reference colorizer: `guided`

{run_dir.REFERENCE_MODELS['guided']}.

    python -m jaxcolor.colorize photo.jpg --model=guided --hints=hints.json --out=colorized
    python -m jaxcolor.colorize photo.jpg --model=guided --out=colorized          # no hints: automatic
    python -m jaxcolor.evaluate_hints --model=guided --out=/tmp/hints_eval       # the table below

hints.json lists colors in the photo's own pixels: `[{{"x": 120, "y": 48, "color": "#2f6fd0"}}]` (optional
`"size"` in pixels; several photos: lists keyed by file name; `jaxcolor.inference.hint_file`). After the network,
colorize keeps {share:g} of the network's response to the hints (its colors with them minus without them),
moves every pixel by the residuals (hint color - that color at the hint) of the hinted pixels of similar
lightness, anywhere in the photo, and carries the residuals left along the photo's edges
(`jaxcolor.hint_propagation`: a lightness-indexed correction, then an edge-aware diffusion on L, fading far from
hints); `--no_propagation` gives the network's colors alone.{flip_note}

## Training
- Recipe: {'`configs/reference_guided.py`, then `configs/reference_guided_192.py`' if c.get('stage1') else '`configs/reference_guided.py`'}: model `efficientnet_unet` with `guided=True` ({c['params_m']:.2f}M
  parameters): the `accurate` network plus a hint branch that adds the hints (ab and mask, summarized per cell)
  to the encoder's stem, its stride-32 head and every decoder level, each through a conv pair whose last conv
  starts at zero; loss `{c['loss']}`.
- Start: {_start(c)}
- Hints: simulated from the truth in every batch, on the device (`jaxcolor.hints`): a geometric number of points
  (p = 1/8: no hint for 1/8 of the photos, 7 on average), 1-9 px squares around the center (Gaussian, std a
  quarter of the side), each the true mean ab over its square.
- Data: {c['data']}; {c['image_size']} px crops. Steps: {c['step']} x batch {c['batch']}; Adam, learning rate
  {c['learning_rate']}, {c['warmup_steps']} warm-up steps, cosine decay{c['lr_note']}. {c['budget_note']}
- Wall time: {c['wall_minutes']:.0f} min on {c['hardware']}. Inference at {c['inference_size']} px.
- The paper (Zhang et al. 2017) trains its own network on 1.3M ImageNet photos at 176 px for ~1M iterations,
  with a classification branch and global hints beside; here a 2-core CPU, {_total_steps(c)} steps from
  `accurate`, local hints only.

## PSNR and AuC against the number of hints
Held-out photos at 256 px; the hints simulated from each photo's truth at the model's input size as in training
(exactly N per photo, fixed seed: `python -m jaxcolor.evaluate_hints`): "N hints" is the network alone (the
paper's measure), "N hints, propagated" is what colorize gives (the blend and the propagation above); gray, the
constant tint and the automatic models beside.

{table}

![PSNR and AuC against hints](hints_curve.png)

Release check (tests/test_reference.py replays it): Kodak {', '.join(c['release_check']['photos'])} through
`colorize`: without hints PSNR {c['release_check']['psnr']:.3f} dB, AuC {c['release_check']['auc']:.3f} %; with
{c['release_check']['hints']} hints read off each photo (`hint_file.from_truth`; propagated, as colorize does) PSNR
{c['release_check']['with_hints']['psnr']:.3f} dB, AuC {c['release_check']['with_hints']['auc']:.3f} %.

## Samples
![Kodak samples](samples.jpg)

L input | no hints | {SHEET_HINTS} hints read off the photo (the squares, in the hint's color), the network alone |
the same hints propagated (what colorize gives) | ground truth, Kodak24 (full-resolution outputs, shown at 192 px).

## Limits
{c['limits']} Weights: `variables.npz` (numpy arrays, read without pickle{c['storage_note']}), with the run's
`config.json`.
"""


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--guided", required=True,
                 help="workdir trained with configs/reference_guided.py, or `guided`: the shipped model")
  p.add_argument("--data_dir", default="~/tensorflow_datasets")
  p.add_argument("--data_root", default=os.environ.get("JAXCOLOR_DATA", "../shared/data"),
                 help="holds eval/kodak24 (the sample sheet)")
  p.add_argument("--limits", default="", help="what the samples show the model gets wrong, for its card")
  p.add_argument("--note", default="one run.", help="the budget as the card states it (parts, resumes)")
  p.add_argument("--float16", action="store_true", help="ship the weights as float16 (half the size)")
  p.add_argument("--out_dir", default=str(HERE))
  p.add_argument("--package_root", default=None, help="where the model is exported (default: the package)")
  p.add_argument("--stage1", default=None, help="the run RUN fine-tuned (configs/reference_guided_192.py): "
                 "its workdir or its card.json; its training facts go into the card")
  p.add_argument("--cache", default=None, help="the evaluation's JSON, reused if there (default: a run's "
                 "release_eval/hints_curve.json; none for the shipped model)")
  p.add_argument("--max_batches", type=int, default=0, help="per eval set; 0: all (smoke runs: 1)")
  a = p.parse_args()
  out_dir, wd = pathlib.Path(a.out_dir), a.guided
  out_dir.mkdir(parents=True, exist_ok=True)
  shipped = wd == "guided"
  cache = pathlib.Path(a.cache) if a.cache else None if shipped else pathlib.Path(wd) / "release_eval" / "hints_curve.json"
  if cache and cache.exists():
    results = json.loads(cache.read_text())
  else:
    results = evaluate_hints.hint_curve(wd, references=("accurate", "vivid"), data_dir=a.data_dir, size=256,
                                        batch_size=16, max_batches=a.max_batches)
    if cache:
      cache.parent.mkdir(parents=True, exist_ok=True)
      cache.write_text(json.dumps(results, indent=1))
  table = evaluate_hints.markdown(results)
  (out_dir / "guided_results.md").write_text(table + "\n")
  (out_dir / "guided_results.json").write_text(json.dumps(results, indent=1))
  evaluate_hints.plot(results, out_dir / "guided_curve.png")
  if shipped:
    colorizer, network = Colorizer.reference("guided"), Colorizer.reference("guided", propagate=False)
  else:
    colorizer, network = Colorizer(wd), Colorizer(wd, propagate=False)
  kodak = pathlib.Path(a.data_root) / "eval" / "kodak24"
  hinted_sheet(colorizer, network, [np.asarray(Image.open(kodak / f).convert("RGB")) for f in release.FIGURE_PHOTOS],
               out_dir / "guided_figure.jpg")
  hinted_sheet(colorizer, network, release.held_out_photos(colorizer, a.data_dir, 8),
               out_dir / "guided_figure_photos256.jpg")
  photos = [np.asarray(Image.open(kodak / f).convert("RGB")) for f in release.RELEASE_PHOTOS]
  check = dict(photos=list(release.RELEASE_PHOTOS), **reference.release_metrics(colorizer, photos),
               hints=CHECK_HINTS, with_hints=reference.release_metrics(colorizer, photos, CHECK_HINTS))
  figures = {"hints_curve.png": out_dir / "guided_curve.png", "samples.jpg": out_dir / "guided_figure.jpg"}
  if shipped:  # the weights and how they were trained stay; what inference gives is measured again
    shipped_model = reference.load("guided")
    folder, card = shipped_model.folder, {**shipped_model.card, "hints_table": results, "release_check": check,
                                          "inference_flip": colorizer.flip}
    card.update({k: v for k, v in (("limits", a.limits),) if v})
    reference.write_card(folder, card)
    release.write_docs(folder, model_card(card, table), figures)
    print(f"guided: {folder} re-evaluated (step {card['step']}, release check {check})")
  else:
    cfg = colorizer.config
    import jax
    card = dict(
        params_m=sum(x.size for x in jax.tree.leaves(colorizer.variables["params"])) / 1e6,
        loss=release.loss_terms(cfg), step=colorizer.step, **release.recipe_facts(cfg),
        wall_minutes=release.curves(wd)["wall_minutes"], hardware=release.hardware(), hints_table=results,
        limits=a.limits, budget_note=a.note, storage_note=", float16" if a.float16 else "", release_check=check,
        inference_flip=colorizer.flip,
        **({"stage1": stage_facts(a.stage1)} if a.stage1 else {}))
    release.ship(wd, "guided", card, model_card(card, table), figures, out_root=a.package_root, float16=a.float16)
  print(table)


if __name__ == "__main__":
  main()
