"""Study 1: one U-Net at 64x64 on Tiny-ImageNet, five losses (seeds 000 and 004), every decoding.

    python -m experiments.regression_vs_classification.run --root=/tmp/exp_rvc --data_dir=/tmp/jaxcolor_tfds
    python -m experiments.regression_vs_classification.run --root=/tmp/exp_rvc_smoke --steps=4 --smoke

Runs (same U-Net, data, batch, optimizer and steps; only the head and loss differ): regression with L2, L1 and
Huber on ab, classification over 313 bins with cross-entropy on soft targets, with and without class
rebalancing. Classification runs are evaluated under mode, mean and annealed-mean decoding (T = 0.2, 0.38, 0.6,
1.0). Evaluation: Tiny-ImageNet val (5,000 photos) at 64 px; Kodak24 and McMaster at 64 and 256 px. Writes
results.md, results.json and figure.png next to this file (`--smoke` writes them under --root instead).
"""
from __future__ import annotations

import argparse
import functools
import pathlib

from configs import unet_cls
from experiments import runner

HERE = pathlib.Path(__file__).parent
FEATURES = (16, 32, 64, 128)  # 0.49M parameters: a CPU-sized U-Net (seed 000's is 64..512)


def base_config(steps: int, batch: int):
  """The study's U-Net, data and budget (a classifier; runs set head and loss). Also the loss_terms study's."""
  c = unet_cls.get_config()
  c.dataset = "tiny_imagenet_64"
  c.model_kwargs.features = FEATURES
  c.image_size, c.batch_size, c.total_steps = 64, batch, steps
  c.learning_rate, c.schedule, c.warmup_steps = 1e-3, "warmup_cosine", min(50, steps // 4)
  c.eval_every, c.eval_batches, c.checkpoint_every, c.log_every = 0, 2, max(1, steps // 4), 50
  return c


def make_runs(steps: int, batch: int) -> list[runner.Run]:
  base = functools.partial(base_config, steps, batch)
  runs = []
  for loss, about in (("l2", "regression, L2"), ("l1", "regression, L1"), ("huber", "regression, Huber")):
    c = base()
    c.head, c.loss = "regression", loss
    runs.append(runner.Run(f"reg_{loss}", c, about))
  for rebalance in (True, False):
    c = base()
    c.rebalance = rebalance
    runs.append(runner.Run("cls_rebalanced" if rebalance else "cls_plain", c,
                           f"classification, 313 bins, {'rebalanced (lambda 0.5)' if rebalance else 'no rebalancing'}"))
  return runs


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--root", default="runs/exp_regression_vs_classification", help="run workdirs")
  p.add_argument("--data_dir", default="~/tensorflow_datasets", help="where folder datasets are built")
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--smoke", action="store_true", help="Kodak at 64 only; outputs under --root")
  a = p.parse_args()
  evalsets = [runner.EvalSet("tiny_imagenet_64", 64)] + [
      runner.EvalSet(d, s) for d in ("kodak24", "mcmaster") for s in (64, 256)]
  if a.smoke:
    evalsets = [runner.EvalSet("kodak24", 64)]
  runner.run_study(make_runs(a.steps, a.batch), evalsets, root=a.root, data_dir=a.data_dir,
                   out_dir=pathlib.Path(a.root) / "study" if a.smoke else HERE,
                   figure_set=runner.EvalSet("kodak24", 256))


if __name__ == "__main__":
  main()
