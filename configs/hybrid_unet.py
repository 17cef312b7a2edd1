"""Hybrid VGG16 + ResNet50V2 U-Net with an L2 loss and progressive resizing 32 -> 64 -> 128 -> 256 (seed 002).

    python -m jaxcolor.main --config=configs/hybrid_unet.py --workdir=runs/hybrid_unet \
        --config.pretrained.vgg=/path/to/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 \
        --config.pretrained.resnet=/path/to/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5
    python -m jaxcolor.main --config=configs/hybrid_unet.py:local --workdir=runs/hybrid_unet_local  # CPU smoke run

Seed 002 (jchen, "Image Colorization") joins two ImageNet encoders, VGG16 and ResNet50V2, at the bottleneck and
decodes with a U-Net over VGG16's intermediate layers, trained with L2 (MSE) on ab and progressive resizing
(32, 64, 128, 256 px) on photos of places. `config.pretrained` names the model's `encoders()`, "vgg" and
"resnet"; the paths are empty by default (random init: nothing is downloaded) and are set on the command line
as above, each a local Keras notop .h5 file. Train sizes follow `progressive_sizes` (step -> size, a quarter of
the run each); `image_size` (256, the last stage) is the eval size. The seed gives no optimizer, batch or run
length: Adam at 1e-4 (a usual fine-tuning rate for pretrained encoders), batch 32 and 40k steps are our choices.
Data: Places365 at 256 px (`places365_small`, a TFDS download), the seed's subject; the 4.7k photos under
$JAXCOLOR_DATA are `--config.dataset=photos_256`.
The local variant: random-init tiny encoders at 32 px (the model's minimum: sizes must be multiples of 32), one
progressive stage; `--config.progressive_sizes='((0, 32), (1, 64))'` also exercises a stage switch.
"""
import ml_collections

from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "hybrid_unet"
  c.pretrained = ml_collections.ConfigDict(dict(vgg="", resnet=""))  # encoder name -> Keras .h5 ("" = random)
  c.head = "regression"
  c.loss = "l2"
  c.dataset = "places365_small"  # the seed colorizes places
  c.image_size = 256
  c.progressive_sizes = ((0, 32), (10_000, 64), (20_000, 128), (30_000, 256))
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 1e-4
  c.total_steps = 40_000
  c.eval_every = 5000
  c.checkpoint_every = 5000
  if variant == "local":
    default.local(c)
    c.model_kwargs = ml_collections.ConfigDict(dict(
        encoder_width=1 / 16, vgg_depths=(1, 1, 1, 1, 1), resnet_stages=(1, 1, 1, 1), bottleneck_features=4,
        decoder_features=(4, 4, 4, 4, 4)))
    c.progressive_sizes = ((0, 32),)  # the progressive input path, without a second compilation
  return c
