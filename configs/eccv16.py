"""Zhang, Isola and Efros, "Colorful Image Colorization" (ECCV 2016): 313-bin classification, as trained.

    python -m jaxcolor.main --config=configs/eccv16.py --workdir=runs/eccv16
    python -m jaxcolor.main --config=configs/eccv16.py:local --workdir=runs/eccv16_local  # CPU smoke run

Training as in the paper (docs/zhang2016.md): Adam lr 3e-5, betas (0.9, 0.99), weight decay 1e-3
(Caffe's, added to the gradient: optimizer "adam" with weight_decay is L2 regularization), batch 40, 176x176
crops (a 176 crop of a 256 photo is ~47% of its area), ~450k iterations on ImageNet; cross-entropy over the 313
in-gamut bins with soft targets (5 neighbours, sigma 5) at 1/4 resolution, class rebalancing (lambda 0.5), and
annealed-mean decoding at T = 0.38. Evaluation runs at 256 (the ImageNet protocol). The data is the paper's,
ImageNet (`imagenet2012`), which TFDS builds from a manual download (README, "Datasets").
"""
from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "eccv16"
  c.model_kwargs.width = 1.0
  c.head = "classification"
  c.loss = "cross_entropy"
  c.bin_step = 10.0  # 313 bins
  c.bin_extent = 110.0
  c.soft_k = 5
  c.soft_sigma = 5.0
  c.rebalance = True
  c.rebalance_lambda = 0.5
  c.decoding = "annealed_mean"
  c.temperature = 0.38
  c.dataset = "imagenet2012"  # manual download: README, "Datasets"
  c.image_size = 176
  c.eval_image_size = 256
  c.batch_size = 40
  c.augment.random_resized_crop = True
  c.augment.crop_area = (0.4, 0.55)  # ~ a 176 crop of a 256-resized photo
  c.augment.flip = True
  c.optimizer = "adam"
  c.learning_rate = 3e-5
  c.b1 = 0.9
  c.b2 = 0.99
  c.weight_decay = 1e-3
  c.total_steps = 450_000
  c.eval_every = 10_000
  c.checkpoint_every = 10_000
  if variant == "local":
    default.local(c)
    c.model_kwargs.width = 1 / 32
    c.eval_image_size = 32
    c.learning_rate = 1e-3
  return c
