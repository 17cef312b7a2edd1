"""Inception-ResNet-v2 fusion colorizer (seed 003, sec. 6.2; "Deep Koalarization", Baldassarre et al. 2017).

Two branches see the grey image:
- a local encoder on L (centred to [-1, 1]): 3x3 conv-BN-ReLU layers, stride 2 alternating with stride 1
  (learned downsampling instead of max-pooling), to H/8 x W/8 x 256 (Deep Koalarization's widths
  64s2, 128, 128s2, 256, 256s2, 512, 512, 256);
- a global embedding: Inception-ResNet-v2 on the grey image as three channels ("tf" preprocessing), resized to
  `embed_size` (299, the network's native size, as in Deep Koalarization; None feeds the input size, which must
  then be at least 75), global average pooling of its 8 x 8 x 1536 output, and a Dense layer to `embed_dim`
  (1000; seed 003 adds "a Global Average pooling layer along with a Dense layer" to the notop network).
Fusion: the embedding is tiled over the H/8 x W/8 grid, concatenated with the local features, and mixed by a
1x1 conv-BN-ReLU to 256 channels. Decoder: 3x3 conv-BN-ReLU and 2x nearest upsampling, alternating, back to
H x W; the head is a 3x3 conv with tanh (seed: "all layers ReLU except the last, tanh"), or bin logits.

Pretrained weights: `pretrained.load_pretrained(model, variables,
{"inception": "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5"})`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcolor.models.inception_resnet_v2 import IRV2_BLOCKS, InceptionResNetV2Encoder
from jaxcolor.models.keras_weights import encoder_input
from jaxcolor.models.layers import ColorModel, ConvBN, center_l, check_divisible
from jaxcolor.models.vgg_ae import upsample2x

# (features, stride) of the local encoder, H -> H/8 (Deep Koalarization, Table 1).
LOCAL_ENCODER = ((64, 2), (128, 1), (128, 2), (256, 1), (256, 2), (512, 1), (512, 1), (256, 1))


class Koalarization(ColorModel):
  """Local conv encoder on L fused with a global Inception-ResNet-v2 embedding; sizes divisible by 8."""
  output_stride: ClassVar[int] = 1
  default_size: ClassVar[int] = 224  # seed 003's final model (Deep Koalarization also uses 224)
  encoder_names: ClassVar[tuple[str, ...]] = ("inception",)

  width: float = 1.0  # multiplier of the local encoder, fusion and decoder widths
  encoder_width: float = 1.0  # Inception-ResNet-v2 channel multiplier; 1 for the ImageNet weights
  encoder_blocks: Sequence[int] = IRV2_BLOCKS
  embed_size: int | None = 299
  embed_dim: int = 1000
  fusion_features: int = 256
  decoder_features: Sequence[int] = (128, 64, 32)  # one conv before each 2x upsampling (3 for H/8)
  finetune_encoder_bn: bool = False  # False: Inception-ResNet-v2's BN keeps its running (ImageNet) statistics

  def encoders(self) -> dict[str, nn.Module]:
    """Submodule name -> (unbound) encoder, for `pretrained.load_pretrained`."""
    return {"inception": self._inception(parent=None)}

  def _inception(self, **kwargs) -> InceptionResNetV2Encoder:
    return InceptionResNetV2Encoder(width=self.encoder_width, blocks=self.encoder_blocks, dtype=self.dtype,
                                    param_dtype=self.param_dtype, conv=self.conv, max_pool=self.max_pool, **kwargs)

  def _w(self, f: int) -> int:
    return max(1, int(round(f * self.width)))

  @nn.compact
  def __call__(self, l: jax.Array, *, train: bool) -> jax.Array:
    if len(self.decoder_features) != 3:
      raise ValueError(f"Koalarization upsamples 3 times (H/8 -> H), got decoder_features="
                       f"{tuple(self.decoder_features)}")
    check_divisible(l, 8, "Koalarization")
    kw = dict(conv=self.conv, **self.layer_kwargs)
    batch, h, w, _ = l.shape

    x = center_l(l, 50.0, self.dtype)  # (B, H, W, 1) in [-1, 1]
    for i, (f, s) in enumerate(LOCAL_ENCODER):
      x = ConvBN(self._w(f), strides=s, name=f"local{i}", **kw)(x, train=train)  # -> (B, H/8, W/8, 256)

    l_embed = l.astype(jnp.float32)
    if self.embed_size is not None:
      l_embed = jax.image.resize(l_embed, (batch, self.embed_size, self.embed_size, 1), "bilinear")
    g = self._inception(name="inception")(encoder_input(l_embed, InceptionResNetV2Encoder.preprocessing,
                                                        self.dtype), train=train and self.finetune_encoder_bn)
    g = jnp.mean(g["conv_7b_ac"].astype(jnp.float32), axis=(1, 2))  # (B, 1536) global average pooling
    g = nn.Dense(self.embed_dim, name="embed", dtype=self.dtype, param_dtype=self.param_dtype)(g.astype(self.dtype))  # (B, embed_dim)
    g = jnp.broadcast_to(g[:, None, None, :], (batch, x.shape[1], x.shape[2], self.embed_dim))
    x = jnp.concatenate([x, g.astype(x.dtype)], axis=-1)  # (B, H/8, W/8, 256 + embed_dim)
    x = ConvBN(self._w(self.fusion_features), kernel_size=1, name="fusion", **kw)(x, train=train)

    for i, f in enumerate(self.decoder_features):  # (B, h, w, .) -> (B, 2h, 2w, f)
      x = ConvBN(self._w(f), name=f"dec{i}", **kw)(x, train=train)
      x = upsample2x(x)
    assert x.shape[1:3] == (h, w)
    return self.output_head(channels=2, activation="tanh", kernel_size=3)(x)  # (B, H, W, 2 | num_bins)
