"""ResNet-50 U-Net classification over 198 ab bins with rebalanced cross-entropy (seed 004).

    python -m jaxcolor.main --config=configs/resnet50_unet_cls.py --workdir=runs/resnet50_unet_cls \
        --config.pretrained.resnet=/path/to/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
    python -m jaxcolor.main --config=configs/resnet50_unet_cls.py:local --workdir=runs/resnet50_unet_cls_local  # CPU smoke run

Seed 004 ("Image Colorization Project 2.0"), after Zhang et al. 2016: ab quantized so that "each pixel belonged
to one of roughly 200 classes", a weighted categorical cross-entropy, a 200-way distribution per pixel decoded
by mode, expected value, ... keeping the best. Here: a grid step of 13 over [-110, 110] gives 198 in-gamut bins
(step 10 gives Zhang's 313), soft-encoded targets, class rebalancing (lambda 0.5) from the empirical prior, and
annealed-mean decoding at T = 0.38 (`--config.decoding=mode` or `mean` for the alternatives). Same ResNet-50 U-Net,
224x224 and optimizer as `resnet50_unet_reg.py` (Adam 1e-4, batch 32: our choices; the seed gives none);
`config.pretrained.resnet` is empty by default (random init), set it as above. Data: ImageNet (`imagenet2012`), as `resnet50_unet_reg.py`.
"""
from configs import resnet50_unet_reg


def get_config(variant: str = ""):
  c = resnet50_unet_reg.get_config(variant)
  c.head = "classification"
  c.loss = "cross_entropy"
  c.bin_step = 13.0  # 198 in-gamut bins over [-110, 110] (seed 004: "roughly 200 classes")
  c.rebalance = True
  c.rebalance_lambda = 0.5
  c.decoding = "annealed_mean"
  c.temperature = 0.38
  return c
