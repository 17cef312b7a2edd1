"""Study 3: progressive resizing (seed 002) vs a fixed size at equal compute, on ../shared/data/photos-256.

    python -m experiments.progressive_resizing.run --root=/tmp/exp_progressive --data_dir=/tmp/jaxcolor_tfds

Model: seed 002's hybrid VGG16 + ResNet50V2 U-Net (random init: no pretrained files here), narrowed to 1/8 of
its channels for the CPU, L2 on ab, Adam 1e-3 with a warmup-cosine schedule, batch 16. The progressive run
trains a third of its steps at each of 32, 64 and 128 px; the fixed run trains at 128 px for as many steps as
give the same number of training pixels (convolution FLOPs scale with pixels): n steps at 32 + 64 + 128 px
cost (1 + 4 + 16) / 16 = 21/16 n steps at 128. Both are evaluated at 128 px on the held-out 5% of
photos-256, and at 256 px on Kodak24 and McMaster (seed 002's last stage is 256). Writes results.md,
results.json and figure.png next to this file.
"""
from __future__ import annotations

import argparse
import pathlib

from configs import hybrid_unet
from experiments import runner

HERE = pathlib.Path(__file__).parent
SIZES = (32, 64, 128)


def make_runs(stage_steps: int, batch: int) -> list[runner.Run]:
  def base(total_steps: int):
    c = hybrid_unet.get_config()
    # Random-init encoders (no pretrained files): ResNet50V2's BatchNorm must learn its statistics.
    c.model_kwargs = dict(encoder_width=1 / 8, bottleneck_features=64, decoder_features=(64, 32, 16, 8, 4),
                          finetune_encoder_bn=True)
    c.image_size, c.batch_size, c.total_steps = SIZES[-1], batch, total_steps
    c.learning_rate, c.schedule, c.warmup_steps = 1e-3, "warmup_cosine", min(50, total_steps // 4)
    c.eval_every, c.eval_batches, c.log_every = 0, 2, 50
    c.checkpoint_every = max(1, total_steps // 4)
    return c

  progressive = base(stage_steps * len(SIZES))
  progressive.progressive_sizes = tuple((i * stage_steps, s) for i, s in enumerate(SIZES))
  pixels = stage_steps * sum(s * s for s in SIZES)
  fixed = base(round(pixels / SIZES[-1] ** 2))
  fixed.progressive_sizes = ()
  return [runner.Run("progressive", progressive, f"{' -> '.join(map(str, SIZES))} px, {stage_steps} steps each"),
          runner.Run("fixed", fixed, f"{SIZES[-1]} px throughout, same training pixels")]


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--root", default="runs/exp_progressive_resizing", help="run workdirs")
  p.add_argument("--data_dir", default="~/tensorflow_datasets")
  p.add_argument("--stage_steps", type=int, default=100)
  p.add_argument("--batch", type=int, default=16)
  a = p.parse_args()
  evalsets = [runner.EvalSet("photos_256", 128), runner.EvalSet("photos_256", 256),
              runner.EvalSet("kodak24", 256), runner.EvalSet("mcmaster", 256)]
  runner.run_study(make_runs(a.stage_steps, a.batch), evalsets, root=a.root, data_dir=a.data_dir, out_dir=HERE,
                   figure_set=runner.EvalSet("kodak24", 256))


if __name__ == "__main__":
  main()
