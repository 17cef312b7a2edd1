"""Study 2: architectures at an equal budget (same data, steps, batch, optimizer) on Tiny-ImageNet at 64 px.

    python -m experiments.architectures.run --root=/tmp/exp_rvc --data_dir=/tmp/jaxcolor_tfds

Runs: the U-Net of study 1 with L2 and with rebalanced cross-entropy (shared with study 1 when --root is the
same: identical configs are trained once), seed 003's baseline CNN and its autoencoder predicting Lab (ab) or
RGB, and Zhang et al.'s network (`eccv16`, 313-bin classification at 1/4 resolution). Every model is narrowed
to CPU size (first stage 16 channels; eccv16 at width 1/4) and each keeps its own loss: L2 for the regressors,
rebalanced cross-entropy for the classifiers. Evaluation: Tiny-ImageNet val at 64 px and Kodak24 / McMaster
at 256 px. Writes results.md, results.json and figure.png next to this file.
"""
from __future__ import annotations

import argparse
import pathlib

from experiments import runner
from experiments.regression_vs_classification import run as study1

HERE = pathlib.Path(__file__).parent


def make_runs(steps: int, batch: int) -> list[runner.Run]:
  shared = {r.name: r for r in study1.make_runs(steps, batch)}
  runs = [runner.Run("reg_l2", shared["reg_l2"].config, "U-Net, L2 (study 1's run)"),
          runner.Run("cls_rebalanced", shared["cls_rebalanced"].config, "U-Net, rebalanced CE (study 1's run)")]
  regression = shared["reg_l2"].config
  for name, model, kwargs, about in (
      ("cnn_baseline", "cnn_baseline", dict(features=(16, 32, 64, 128)), "seed 003 baseline CNN, L2"),
      ("autoencoder_lab", "autoencoder", dict(features=(16, 32, 64, 128), target="lab"),
       "seed 003 autoencoder, predicts ab, L2"),
      ("autoencoder_rgb", "autoencoder", dict(features=(16, 32, 64, 128), target="rgb"),
       "seed 003 autoencoder, predicts RGB, L2")):
    c = regression.copy_and_resolve_references()
    c.model = model
    c.model_kwargs = kwargs
    c.target_space = kwargs.get("target", "lab")
    runs.append(runner.Run(name, c, about))
  c = shared["cls_rebalanced"].config.copy_and_resolve_references()
  c.model, c.model_kwargs = "eccv16", dict(width=0.25)
  runs.append(runner.Run("eccv16", c, "Zhang et al. 2016 at width 1/4, rebalanced CE"))
  return runs


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--root", default="runs/exp_regression_vs_classification", help="run workdirs (study 1's)")
  p.add_argument("--data_dir", default="~/tensorflow_datasets")
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--batch", type=int, default=32)
  a = p.parse_args()
  evalsets = [runner.EvalSet("tiny_imagenet_64", 64), runner.EvalSet("kodak24", 256),
              runner.EvalSet("mcmaster", 256)]
  runner.run_study(make_runs(a.steps, a.batch), evalsets, root=a.root, data_dir=a.data_dir, out_dir=HERE,
                   figure_set=runner.EvalSet("kodak24", 256))


if __name__ == "__main__":
  main()
