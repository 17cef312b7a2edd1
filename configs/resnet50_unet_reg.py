"""ResNet-50 U-Net regression of ab with an L2 loss (seed 004, "Image Colorization Project 2.0").

    python -m jaxcolor.main --config=configs/resnet50_unet_reg.py --workdir=runs/resnet50_unet_reg \
        --config.pretrained.resnet=/path/to/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
    python -m jaxcolor.main --config=configs/resnet50_unet_reg.py:local --workdir=runs/resnet50_unet_reg_local  # CPU smoke run

Seed 004 uses a pretrained ResNet-50 as the encoder of a simplified U-Net, upsampling with transposed convs and
BatchNorm, at 224x224; framed as regression the output is (224, 224, 2) ab, and the seed found it "easier, more
computationally efficient" and better than classification (`configs/resnet50_unet_cls.py`). L2 is our reading
of the seed's regression loss (it names none). `config.pretrained.resnet` (the model's one encoder) is empty by
default: random init; pass the local Keras notop .h5 file as above. The seed gives no optimizer settings: Adam
at 1e-4 (a usual fine-tuning rate for a pretrained encoder), batch 32 and 20k steps are our choices.
Data: ImageNet (`imagenet2012`, the seed's; manual download, README "Datasets").
"""
import ml_collections

from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "resnet50_unet"
  c.pretrained = ml_collections.ConfigDict(dict(resnet=""))  # encoder name -> Keras .h5 ("" = random init)
  c.head = "regression"
  c.loss = "l2"
  c.dataset = "imagenet2012"  # the seed's data; manual download: README, "Datasets"
  c.image_size = 224
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 1e-4
  c.total_steps = 20_000
  c.eval_every = 2000
  c.checkpoint_every = 2000
  if variant == "local":
    default.local(c)
    c.model_kwargs = ml_collections.ConfigDict(dict(
        encoder_width=1 / 16, encoder_stages=(1, 1, 1, 1), decoder_features=(4, 4, 4, 4, 4)))
  return c
