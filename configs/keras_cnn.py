"""Seed 001's Keras colorization network ("Deep Learning Final Project - Image Colorization"): L -> ab at 256x256.

    python -m jaxcolor.main --config=configs/keras_cnn.py --workdir=runs/keras_cnn
    python -m jaxcolor.main --config=configs/keras_cnn.py:local --workdir=runs/keras_cnn_local  # CPU smoke run

Model: `autoencoder` (target "lab"), not `cnn_baseline`. Seed 001 describes a Keras Sequential stack of Conv2D
layers as an encoder that "condenses data into lower dimensions" and a decoder that reverses it, "to bring it
back to 256 we upscale in the decoder", predicting A and B from L with no skip connections; that is the
stride-2 conv encoder + UpSampling2D/Conv2D decoder of `models.autoencoder` (whose docstring covers seed 001),
whereas `cnn_baseline` is seed 003's transposed-conv benchmark at 224.
Seed 001 resizes its photos to 256x256 (no crops or augmentation mentioned), trains on ~5,000 Kaggle photos and
minimizes a reconstruction error of ab (MSE, `l2` here). It gives no optimizer, batch or epoch count: Adam at
Keras' default lr 1e-3 and batch 32 (Keras' `fit` default) are our choices, and the model keeps its BatchNorm
(`--config.model_kwargs.use_bn=False` for a plain Conv2D stack as the seed's Keras model probably had).
Data: the seed's 5,000 Kaggle photos are not public by name; Places365 at 256 px (`places365_small`, a TFDS
download) stands in; `--config.dataset=folder:PATH` trains on a photo folder of your own.
"""
from configs import default


def get_config(variant: str = ""):
  default.check_variant(variant)
  c = default.get_config()
  c.model = "autoencoder"
  c.model_kwargs.target = "lab"
  c.model_kwargs.features = (64, 128, 256, 512)
  c.head = "regression"
  c.loss = "l2"
  c.dataset = "places365_small"  # stands in for the seed's ~5,000 Kaggle photos
  c.image_size = 256
  c.batch_size = 32
  # Whole photo resized to 256 (a random square crop of the short side), no flips: the seed only resizes.
  c.augment.random_resized_crop = False
  c.augment.flip = False
  c.optimizer = "adam"
  c.learning_rate = 1e-3
  c.total_steps = 15_000  # ~100 epochs of 4.7k photos at batch 32
  c.eval_every = 1500
  c.checkpoint_every = 1500
  if variant == "local":
    default.local(c)
    c.model_kwargs.features = (4, 8)
  return c
