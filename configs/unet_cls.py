"""U-Net classification over 313 ab bins with class rebalancing (seed 000; Zhang et al. 2016 targets).

    python -m jaxcolor.main --config=configs/unet_cls.py  # the embedded photos, into runs/unet_cls
    python -m jaxcolor.main --config=configs/unet_cls.py --config.dataset=imagenet_resized/64x64  # the seed's data
    python -m jaxcolor.main --config=configs/unet_cls.py:local --workdir=runs/unet_cls_local  # CPU smoke run

The project's introductory command: its default data are the photos embedded in scikit-image (works offline,
nothing to download), so the full recipe runs anywhere; seed 000 trained on 64x64 ImageNet photos (second
command, a TFDS download). The local variant: the same photos, a narrow U-Net and a few dozen steps.
"""
from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "unet"
  c.model_kwargs.features = (64, 128, 256, 512)  # seed 000's U-Net; narrower: --config.model_kwargs.features
  c.head = "classification"
  c.loss = "cross_entropy"
  c.image_size = 64
  c.batch_size = 32
  c.learning_rate = 3e-4
  c.total_steps = 20_000
  c.eval_every = 2000
  c.checkpoint_every = 2000
  if variant == "local":  # a 40-step demo (the README's main command), not only a 2-step smoke run
    default.local(c)
    c.model_kwargs.features = (16, 32, 64)
    c.total_steps = 40
    c.log_every = 10
    c.eval_every = 20
    c.checkpoint_every = 20
    c.prior_batches = 5
    c.learning_rate = 1e-3
  return c
