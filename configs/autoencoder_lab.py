"""Seed 003's AE-LAB autoencoder (sec. 5): L -> ab / 110 with tanh, no skips, L2 loss, lr halved on plateaus.

    python -m jaxcolor.main --config=configs/autoencoder_lab.py --workdir=runs/autoencoder_lab
    python -m jaxcolor.main --config=configs/autoencoder_lab.py:local --workdir=runs/autoencoder_lab_local  # CPU smoke run

Seed 003: eight conv layers down (4 stride-2 blocks here) and conv + UpSampling2D layers up, ReLU, tanh on ab
normalized to (-1, 1), loss = mean squared error of ab, a ReduceLROnPlateau callback on the loss that cuts the
lr "by a factor of 2-10" (0.5 here) after `patience` epochs without improvement, on 256x256 photos with random
rotations, flips and zooms. Adam at 1e-3 (the seed's choice in sec. 6.2), batch 32, a plateau check over 150
steps (about an epoch of 4.7k photos), patience 5, the augmentation strengths and 20k steps are our choices.
Data: COCO 2017 in place of Visual Genome (`default.seed003_data`). `configs/autoencoder_rgb.py` is the RGB twin.
"""
from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "autoencoder"
  c.model_kwargs.target = "lab"
  c.model_kwargs.features = (64, 128, 256, 512)
  c.head = "regression"
  c.target_space = "lab"
  c.loss = "l2"
  default.seed003_data(c)
  c.image_size = 256
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 1e-3
  c.schedule = "reduce_on_plateau"
  c.plateau_factor = 0.5
  c.plateau_patience = 5
  c.plateau_accumulation_size = 150  # mean train loss over ~1 epoch per plateau check
  c.total_steps = 20_000
  c.eval_every = 2000
  c.checkpoint_every = 2000
  if variant == "local":
    default.local(c)
    c.model_kwargs.features = (4, 8)
    c.plateau_accumulation_size = 1
  return c
