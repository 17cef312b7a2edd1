"""Baseline CNN of seed 003 (sec. 4): strided-conv encoder, transposed-conv decoder, L2 on ab at 224x224.

    python -m jaxcolor.main --config=configs/cnn_baseline.py --workdir=runs/cnn_baseline
    python -m jaxcolor.main --config=configs/cnn_baseline.py:local --workdir=runs/cnn_baseline_local  # CPU smoke run

Seed 003 ("Automated Colorization Of Grayscale Images Using Deep Learning Techniques") benchmarks its other
models against this one: 224x224 inputs, BatchNorm instead of conv biases, ReLU, tanh output, transposed convs
(64-128-256-512 and back), trained with L2 (reporting L2 and MAE) on 1.6k-16.6k Visual Genome photos for
500-1000 epochs, with random rotations, flips and zooms. Adam at 1e-3 is the optimizer the seed settles on
(sec. 6.2; sec. 4 names none); the batch of 32, the augmentation strengths (10 degrees, 20% zoom) and 20k steps
are our choices. Data: COCO 2017 in place of Visual Genome (`default.seed003_data`).
"""
from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "cnn_baseline"
  c.model_kwargs.features = (64, 128, 256, 512)
  c.head = "regression"
  c.loss = "l2"
  default.seed003_data(c)
  c.image_size = 224
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 1e-3
  c.total_steps = 20_000
  c.eval_every = 2000
  c.checkpoint_every = 2000
  if variant == "local":
    default.local(c)
    c.model_kwargs.features = (4, 8)
  return c
