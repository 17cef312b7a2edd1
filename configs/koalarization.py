"""Seed 003's final model (sec. 6.2, after Deep Koalarization): local conv encoder + Inception-ResNet-v2 embedding.

    python -m jaxcolor.main --config=configs/koalarization.py --workdir=runs/koalarization \
        --config.pretrained.inception=/path/to/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5
    python -m jaxcolor.main --config=configs/koalarization.py:local --workdir=runs/koalarization_local  # CPU smoke run

Seed 003 (sec. 6.2): Adam at lr 1e-3, betas (0.9, 0.999); ReduceLROnPlateau cutting the lr by 0.1 when the loss
plateaus; L2 loss (it "learned a wide spectrum of colors quickly"); BatchNorm, He-normal init, no dropout; batch
100 "worked best"; at least 100 and up to 500 epochs; final model on 224x224 photos (256x256 for the subsets);
random rotations, flips and zooms. The batch is 96 here, not 100, so it splits over 8 devices (100 works on
1, 2 or 4). The plateau check averages ~1 epoch of train losses (150 steps of a ~15k-photo set); patience 10
is Keras' default (the seed gives none); augmentation strengths and 15k steps (~100 epochs) are our choices.
The Inception-ResNet-v2 branch sees the grey image resized to 299 (`embed_size`). `config.pretrained.inception`
(the model's one encoder) is empty by default: random init; pass the local Keras notop .h5 file as above.
Data: COCO 2017 in place of Visual Genome (`default.seed003_data`).
The local variant: tiny widths, one block per Inception-ResNet stage, and embed_size 75, the smallest input
Inception-ResNet-v2's valid-padded stem accepts; the local branch runs on 32x32 (a multiple of 8).
"""
import ml_collections

from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "koalarization"
  c.model_kwargs.embed_size = 299
  c.pretrained = ml_collections.ConfigDict(dict(inception=""))  # encoder name -> Keras .h5 ("" = random)
  c.head = "regression"
  c.loss = "l2"
  default.seed003_data(c)
  c.image_size = 224
  c.batch_size = 96
  c.optimizer = "adam"
  c.learning_rate = 1e-3
  c.b1 = 0.9
  c.b2 = 0.999
  c.schedule = "reduce_on_plateau"
  c.plateau_factor = 0.1
  c.plateau_patience = 10
  c.plateau_accumulation_size = 150
  c.total_steps = 15_000
  c.eval_every = 1500
  c.checkpoint_every = 1500
  if variant == "local":
    default.local(c)
    c.model_kwargs = ml_collections.ConfigDict(dict(
        width=1 / 16, encoder_width=1 / 16, encoder_blocks=(1, 1, 1), embed_size=75, embed_dim=4,
        fusion_features=64, decoder_features=(4, 4, 4)))
    c.plateau_accumulation_size = 1
  return c
