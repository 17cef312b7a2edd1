"""Seed 003's Vgg16-AE (sec. 6.1): ImageNet VGG16 conv base (to 7x7x512) + conv/upsampling decoder, L2 on ab.

    python -m jaxcolor.main --config=configs/vgg16_ae.py --workdir=runs/vgg16_ae \
        --config.pretrained.vgg=/path/to/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
    python -m jaxcolor.main --config=configs/vgg16_ae.py:local --workdir=runs/vgg16_ae_local  # CPU smoke run

Seed 003 takes VGG16 up to block5_pool (7x7x512 at 224x224) as the encoder and decodes with conv + upsampling
layers to 224x224x2 (about 14M weights), trained with L2 (reporting L2 and MAE) for 100-500 epochs on 10k-16k
photos. `config.pretrained.vgg` (the model's one encoder, "vgg") is empty by default: random init, nothing is
downloaded; pass the local Keras notop .h5 file as above. Adam at 1e-3 (the seed's choice in sec. 6.2), batch
32, rotation/flip/zoom augmentation strengths and 20k steps are our choices. Data: COCO 2017 in place of Visual Genome (`default.seed003_data`).
"""
import ml_collections

from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "vgg16_ae"
  c.pretrained = ml_collections.ConfigDict(dict(vgg=""))  # encoder name -> Keras .h5 ("" = random init)
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
    c.model_kwargs = ml_collections.ConfigDict(dict(
        encoder_width=1 / 16, encoder_depths=(1, 1, 1, 1, 1), decoder_features=(4, 4, 4, 4, 4)))
  return c
