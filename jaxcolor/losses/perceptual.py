"""The perceptual loss term: distances between VGG16 features of the predicted and the true RGB photo.

    python -m jaxcolor.main --config=configs/unet_reg.py:local --config.losses.l2=1 \
        --config.losses.perceptual=0.1 \
        --config.loss_options.perceptual.weights=/path/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5

Johnson et al. 2016's feature reconstruction loss: for each chosen VGG16 layer (after its ReLU), the squared
difference of the two feature maps averaged over positions and channels, summed over the layers. The network
is the Keras ImageNet VGG16 read from a local `.h5` file (`models.keras_weights`; nothing is downloaded), cut
after the deepest layer used; input is the RGB photo in Keras "caffe" preprocessing. The weights are frozen:
they are loaded once into `TrainState.loss_state["perceptual"]` (saved with the run, so a resumed run does not
need the file again) and no optimizer touches them.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxcolor import storage
from jaxcolor.cpu import kernels
from jaxcolor.losses.inputs import LossInputs
from jaxcolor.models import keras_weights
from jaxcolor.models.vgg import VGG16_DEPTHS, VGG16Encoder

Array = jnp.ndarray
# relu1_2, relu2_2, relu3_3 (Johnson et al.'s style layers; their content layer is relu2_2)
DEFAULT_LAYERS = "block1_conv2,block2_conv2,block3_conv3"
LAYERS = tuple(f"block{b + 1}_conv{d}" for b, d in enumerate(VGG16_DEPTHS))  # each block's last conv


@dataclasses.dataclass(frozen=True, kw_only=True)
class Perceptual:
  """Options (config.loss_options.perceptual.*): `weights` (the Keras VGG16 .h5 file; required), `layers`
  (comma-separated, from LAYERS: each block's last conv), `temperature` (decoding of a
  classification head; None: the run's)."""
  weights: str = ""
  layers: str = DEFAULT_LAYERS
  temperature: float | None = None

  def __post_init__(self):
    names = self.layer_names
    bad = [n for n in names if n not in LAYERS]
    if bad or not names:
      raise ValueError(f"perceptual layers {bad or names!r} are not VGG16 block outputs; choose from: "
                       f"{', '.join(LAYERS)}")

  @property
  def layer_names(self) -> tuple[str, ...]:
    return tuple(n.strip() for n in self.layers.split(",") if n.strip())

  @property
  def net(self) -> VGG16Encoder:
    """VGG16 cut after the deepest block used, with the CPU kernels where they apply (`cpu.kernels`)."""
    return VGG16Encoder(depths=VGG16_DEPTHS[:1 + max(LAYERS.index(n) for n in self.layer_names)],
                        **kernels.for_model(VGG16Encoder))

  def check(self) -> None:
    """Fails, naming the option, when the weights file is not given or not there (before compilation)."""
    if not self.weights:
      raise ValueError("loss 'perceptual' needs config.loss_options.perceptual.weights: a local Keras VGG16 file "
                       "(vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5); nothing is downloaded")
    if not storage.path(self.weights).is_file():
      raise ValueError(f"config.loss_options.perceptual.weights={self.weights!r}: no such file")

  def init(self, rng: Array) -> dict[str, Any]:
    """{"params": the VGG16 layers from the file} (frozen)."""
    del rng
    self.check()
    net = self.net
    shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    return {"params": keras_weights.load_keras_weights(self.weights, net, shapes)["params"]}

  def features(self, params: Any, rgb: Array) -> dict[str, Array]:
    """RGB (B, H, W, 3) in [0, 1] -> {layer: (B, h, w, C) after ReLU}."""
    return self.net.apply({"params": params}, keras_weights.keras_preprocess(rgb * 255.0, "caffe"))

  def __call__(self, x: LossInputs, state: dict[str, Any]) -> Array:
    """Sum over the layers of the per-photo mean squared feature difference, averaged over photos."""
    pred = self.features(state["params"], x.pred_rgb(self.temperature))
    true = self.features(state["params"], jax.lax.stop_gradient(x.true_rgb()))
    per_example = sum(jnp.mean((pred[n] - true[n]) ** 2, axis=(1, 2, 3)) for n in self.layer_names)
    return x.mean_over_examples(per_example)
