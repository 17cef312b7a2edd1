"""Seed 003's AE-RGB autoencoder (sec. 5): L -> the RGB image itself, MSE on RGB, no skips.

    python -m jaxcolor.main --config=configs/autoencoder_rgb.py --workdir=runs/autoencoder_rgb
    python -m jaxcolor.main --config=configs/autoencoder_rgb.py:local --workdir=runs/autoencoder_rgb_local  # CPU smoke run

Seed 003: an encoder of 4 conv blocks and a decoder of 4, ReLU inside, the loss the mean squared pixel error
between the original and the reconstructed RGB image ("MAE and MSE were both experimented ... MSE would give
better outputs"). The seed squashes with tanh to (-1, 1); here RGB is predicted in [0, 1] with a sigmoid
(`target_space="rgb"` with `model_kwargs.target="rgb"`; the two must agree), the same map up to an affine
rescaling. Sizes and augmentation as `autoencoder_lab.py` (256x256, rotations, flips, zooms); Adam at 1e-3,
batch 32 and 20k steps are our choices. Data: COCO 2017 in place of Visual Genome (`default.seed003_data`).
"""
from configs import autoencoder_lab


def get_config(variant: str = ""):
  c = autoencoder_lab.get_config(variant)
  c.model_kwargs.target = "rgb"
  c.target_space = "rgb"
  c.schedule = "constant"  # the plateau schedule is the AE-LAB run's
  return c
