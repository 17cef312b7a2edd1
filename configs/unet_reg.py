"""U-Net regression of ab with an L2 loss (seed 000, "Evaluation of Image Colourization Approaches", KTH).

    python -m jaxcolor.main --config=configs/unet_reg.py --workdir=runs/unet_reg
    python -m jaxcolor.main --config=configs/unet_reg.py:local --workdir=runs/unet_reg_local  # CPU smoke run

Seed 000 trains one U-Net two ways on 64x64 ImageNet photos: regression (50,000 images, this config) and
classification over the ab bins (30,000 images, `configs/unet_cls.py`). Here the data is the seed's: ImageNet at 64x64
(`imagenet_resized/64x64`, a TFDS download); `--config.dataset=tiny_imagenet_64` reads Tiny-ImageNet from
$JAXCOLOR_DATA (README, "Datasets"). The seed gives no
optimizer settings; Adam, batch 32 and lr 3e-4 match `unet_cls.py`, so the two heads are compared like for like.
The local variant: the scikit-image photos at 32x32, a narrow U-Net, 2 steps.
"""
from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "unet"
  c.model_kwargs.features = (64, 128, 256, 512)
  c.head = "regression"
  c.loss = "l2"
  c.dataset = "imagenet_resized/64x64"  # seed 000: 64x64 ImageNet photos (TFDS download)
  c.image_size = 64
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 3e-4
  c.total_steps = 20_000
  c.eval_every = 2000
  c.checkpoint_every = 2000
  if variant == "local":
    default.local(c)
    c.model_kwargs.features = (8, 16)
  return c
