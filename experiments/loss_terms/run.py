"""Study: loss terms beyond the pixel loss, one U-Net at 64 px on Tiny-ImageNet, equal steps (issue 21).

    python -m experiments.loss_terms.run --root=runs/exp_loss_terms --vgg=/path/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
    python -m experiments.loss_terms.run --root=/tmp/exp_lt_smoke --steps=4 --smoke

Runs (same U-Net, data, batch, optimizer and steps; only the objective differs):
- l2: regression of ab, L2 (the baseline objective);
- l2_perceptual: L2 + perceptual (VGG16 relu1_2 / relu2_2 / relu3_3 feature distances);
- l2_adversarial: L2 + 0.01 adversarial (conditional PatchGAN, spectral norm, non-saturating);
- ce_l1_decoded: classification over the 313 bins, cross-entropy (rebalanced) + L1 on the annealed-mean ab.
`--vgg=random` writes a randomly initialized VGG16 in the Keras file layout under --root and uses it (random
conv features still measure local structure and color, but they are not the ImageNet features of Johnson et
al.); pass the Keras ImageNet file where you have it. `--only=a,b` trains just those runs (two processes can
share the work); a run without `--only` trains what is missing, evaluates everything and writes results.md,
results.json and figure.png next to this file (`--smoke`: under --root).
"""
from __future__ import annotations

import argparse
import pathlib

import jax
import jax.numpy as jnp
from absl import logging

from experiments import runner
from experiments.regression_vs_classification import run as rvc
from jaxcolor.models import keras_weights
from jaxcolor.models.vgg import VGG16Encoder

HERE = pathlib.Path(__file__).parent
PERCEPTUAL_WEIGHT = 1e-4  # perceptual ~120 at the start (random VGG16) vs L2 ~0.03: a comparable share
ADVERSARIAL_WEIGHT = 0.01  # ~0.7 x 0.01
L1_DECODED_WEIGHT = 1.0  # l1_decoded ~0.15 vs cross-entropy ~6 at the start


def make_runs(steps: int, batch: int, vgg: str) -> list[runner.Run]:
  def base():
    c = rvc.base_config(steps, batch)  # the U-Net, data and budget of the regression_vs_classification study
    c.head, c.loss = "regression", "l2"
    return c

  l2 = base()
  perceptual = base()
  perceptual.losses.l2, perceptual.losses.perceptual = 1.0, PERCEPTUAL_WEIGHT
  perceptual.loss_options.perceptual.weights = vgg
  adversarial = base()
  adversarial.losses.l2, adversarial.losses.adversarial = 1.0, ADVERSARIAL_WEIGHT
  cls = base()
  cls.head, cls.loss = "classification", "cross_entropy"
  cls.losses.cross_entropy, cls.losses.l1_decoded = 1.0, L1_DECODED_WEIGHT
  return [runner.Run("l2", l2, "regression, L2"),
          runner.Run("l2_perceptual", perceptual, f"L2 + {PERCEPTUAL_WEIGHT:g} perceptual"),
          runner.Run("l2_adversarial", adversarial, f"L2 + {ADVERSARIAL_WEIGHT:g} adversarial"),
          runner.Run("ce_l1_decoded", cls, f"cross-entropy (rebalanced) + {L1_DECODED_WEIGHT:g} l1_decoded")]


def random_vgg16_file(path: pathlib.Path) -> str:
  """A VGG16 conv base with Flax's default (LeCun normal) init, written as a Keras weights file."""
  if not path.exists():
    net = VGG16Encoder()
    variables = jax.jit(lambda k: net.init(k, jnp.zeros((1, 32, 32, 3))))(jax.random.key(0))
    path.parent.mkdir(parents=True, exist_ok=True)
    keras_weights.save_keras_h5(path, net, variables)
  return str(path)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--root", default="runs/exp_loss_terms", help="run workdirs")
  p.add_argument("--data_dir", default="~/tensorflow_datasets", help="where folder datasets are built")
  p.add_argument("--vgg", default="random", help="Keras VGG16 weights file, or 'random'")
  p.add_argument("--steps", type=int, default=1000)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--only", default="", help="comma-separated runs to train (no evaluation)")
  p.add_argument("--smoke", action="store_true", help="Kodak at 64 only; outputs under --root")
  a = p.parse_args()
  root = pathlib.Path(a.root).expanduser()
  vgg = random_vgg16_file(root / "vgg16_random_init_notop.h5") if a.vgg == "random" else a.vgg
  runs = make_runs(a.steps, a.batch, vgg)
  if a.only:
    logging.set_verbosity(logging.INFO)  # the trainer's progress lines
    chosen = a.only.split(",")
    for run in runs:
      if run.name in chosen:
        run.config.data_dir = a.data_dir
        runner.train(run, root)
    return
  evalsets = [runner.EvalSet("tiny_imagenet_64", 64), runner.EvalSet("kodak24", 256)]
  if a.smoke:
    evalsets = [runner.EvalSet("kodak24", 64)]
  runner.run_study(runs, evalsets, root=a.root, data_dir=a.data_dir,
                   out_dir=root / "study" if a.smoke else HERE, figure_set=runner.EvalSet("kodak24", 256))


if __name__ == "__main__":
  main()
