"""The adversarial loss term: a conditional PatchGAN discriminator trained alongside the colorizer.

    python -m jaxcolor.main --config=configs/unet_reg.py:local --config.losses.l2=1 \
        --config.losses.adversarial=0.01 --config.loss_options.adversarial.kind=hinge

The discriminator D sees Lab images at the model's output resolution, (B, h, w, 3) = (L / 50 - 1, ab / 110),
and returns one logit per overlapping patch (pix2pix's PatchGAN: 4x4 convolutions, stride 2, LeakyReLU 0.2;
70 x 70 receptive field with the default 3 strided layers). Real: the photo's own L and ab; fake: its L with
the predicted ab (the annealed mean for a classification head), so D judges the colors given the gray photo.

Its parameters, spectral-normalization vectors and Adam state live in `TrainState.loss_state["adversarial"]`:
saved, restored and replicated with the colorizer. Both networks are updated in the same compiled step:
the colorizer's gradient uses D before the update; D then takes one Adam step on the same batch, with the
colorizer's predictions from before its update (simultaneous gradient descent). Under pmap D's gradient is
averaged over devices like the colorizer's. The step reports D's loss as `loss/adversarial_d`, and a NaN in
it stops the run like a NaN in the colorizer's loss (`steps.train_step`'s "finite").

Spectral normalization (Miyato et al. 2018) rather than BatchNorm keeps D's output a function of each image
alone (no batch coupling between real and fake halves) and its Lipschitz constant near 1.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxcolor import task as task_lib
from jaxcolor.losses.inputs import LossInputs

Array = jnp.ndarray
KINDS = ("non_saturating", "hinge")


def _normalize(v: Array, eps: float = 1e-12) -> Array:
  return v / jnp.maximum(jnp.linalg.norm(v), eps)


class SpectralConv(nn.Module):
  """A convolution whose kernel is divided by its largest singular value (one power-iteration step per
  training call; the vector `u` is kept in the "spectral" collection). `normalize=False`: a plain Conv."""
  features: int
  kernel_size: tuple[int, int] = (4, 4)
  strides: int = 1
  normalize: bool = True

  @nn.compact
  def __call__(self, x: Array, *, update_stats: bool) -> Array:
    kernel = self.param("kernel", nn.initializers.normal(0.02),
                        self.kernel_size + (x.shape[-1], self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    if self.normalize:
      u = self.variable("spectral", "u", lambda: _normalize(
          jax.random.normal(self.make_rng("params"), (self.features,), jnp.float32)))
      sigma, u_new = spectral_sigma(kernel, u.value)
      if update_stats and not self.is_initializing():
        u.value = u_new
      kernel = kernel / sigma
    y = jax.lax.conv_general_dilated(x, kernel, (self.strides, self.strides), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


def spectral_sigma(kernel: Array, u: Array) -> tuple[Array, Array]:
  """One power-iteration step for the largest singular value of `kernel` as a (kh kw cin, cout) matrix:
  (sigma, the next u (cout,)). u and v are constants for the gradient, which flows through the kernel."""
  w = kernel.reshape(-1, kernel.shape[-1])
  v = jax.lax.stop_gradient(_normalize(w @ u))
  u_new = jax.lax.stop_gradient(_normalize(w.T @ v))
  return v @ w @ u_new, u_new


class PatchDiscriminator(nn.Module):
  """(B, h, w, 3) normalized Lab -> (B, h', w') patch logits; `layers` strided convs of width, 2 width, ...
  (capped at 8 width), one stride-1 conv, then the 1-channel logit conv."""
  width: int = 64
  layers: int = 3
  spectral_norm: bool = True

  @nn.compact
  def __call__(self, x: Array, *, update_stats: bool = False) -> Array:
    conv = lambda f, s: SpectralConv(f, strides=s, normalize=self.spectral_norm)
    for i in range(self.layers):
      x = nn.leaky_relu(conv(self.width * min(2 ** i, 8), 2)(x, update_stats=update_stats), 0.2)
    x = nn.leaky_relu(conv(self.width * min(2 ** self.layers, 8), 1)(x, update_stats=update_stats), 0.2)
    return conv(1, 1)(x, update_stats=update_stats)[..., 0]


def _lab(l: Array, ab: Array) -> Array:
  """L (B, h, w, 1) in [0, 100] and ab (B, h, w, 2) in Lab units -> D's input, about [-1, 1]."""
  return jnp.concatenate([l / 50.0 - 1.0, ab / 110.0], axis=-1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Adversarial:
  """The term's options (config.loss_options.adversarial.*) and its three functions: `init` (D's state),
  `__call__` (the colorizer's loss through D) and `update` (D's step)."""
  kind: str = "non_saturating"  # or "hinge"
  learning_rate: float = 2e-4  # D's Adam, b1 0.5 (pix2pix)
  b1: float = 0.5
  width: int = 64
  layers: int = 3
  spectral_norm: bool = True

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"adversarial kind {self.kind!r} is not valid; choose one of: {', '.join(KINDS)}")
    if self.layers < 1 or self.width < 1:
      raise ValueError(f"adversarial needs layers >= 1 and width >= 1, got {self.layers}, {self.width}")

  @property
  def net(self) -> PatchDiscriminator:
    return PatchDiscriminator(self.width, self.layers, self.spectral_norm)

  @property
  def tx(self) -> optax.GradientTransformation:
    return optax.adam(self.learning_rate, b1=self.b1, b2=0.999)

  def init(self, rng: Array) -> dict[str, Any]:
    """{"params", "spectral", "opt_state"} of a fresh discriminator (sizes do not depend on the image)."""
    variables = jax.jit(lambda k: self.net.init({"params": k}, jnp.zeros((1, 16, 16, 3))))(rng)
    return {"params": variables["params"], "spectral": variables.get("spectral", {}),
            "opt_state": self.tx.init(variables["params"])}

  def _input(self, x: LossInputs, ab: Array) -> Array:
    """D's input for ab (B, h, w, 2) at the output resolution, with the photo's L pooled to match."""
    return _lab(task_lib.pool(x.l, x.task.output_stride), ab)

  def _patch_mean(self, x: LossInputs, per_patch: Array) -> Array:
    return x.mean_over_examples(jnp.mean(per_patch, axis=(1, 2)))

  def __call__(self, x: LossInputs, state: dict[str, Any]) -> Array:
    """The colorizer's loss: non-saturating -log D(fake), or hinge -D(fake); D is not changed here."""
    logits = self.net.apply({"params": state["params"], "spectral": state["spectral"]}, self._input(x, x.pred_ab()))
    per_patch = jax.nn.softplus(-logits) if self.kind == "non_saturating" else -logits
    return self._patch_mean(x, per_patch)

  def discriminator_loss(self, params: Any, state: dict[str, Any], x: LossInputs, pred_ab: Array
                         ) -> tuple[Array, Any]:
    """D's loss on real and fake (one call over both halves, so the spectral vectors step once)."""
    both = jnp.concatenate([self._input(x, x.ab), self._input(x, pred_ab)])
    logits, updates = self.net.apply({"params": params, "spectral": state["spectral"]}, both,
                                     update_stats=True, mutable=["spectral"])
    real_logits, fake_logits = jnp.split(logits, 2)
    if self.kind == "non_saturating":
      per_patch = jax.nn.softplus(-real_logits) + jax.nn.softplus(fake_logits)
    else:
      per_patch = jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits)
    return self._patch_mean(x, per_patch), updates.get("spectral", state["spectral"])

  def update(self, x: LossInputs, state: dict[str, Any], axis_name: str | None = None
             ) -> tuple[dict[str, Any], dict[str, Array]]:
    """One Adam step of D on this batch against the colorizer's current (not yet updated) prediction."""
    pred_ab = jax.lax.stop_gradient(x.pred_ab())
    (loss, spectral), grads = jax.value_and_grad(self.discriminator_loss, has_aux=True)(
        state["params"], state, x, pred_ab)
    if axis_name is not None:
      grads, loss = jax.lax.pmean((grads, loss), axis_name)
    updates, opt_state = self.tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "spectral": spectral, "opt_state": opt_state}, {"loss/adversarial_d": loss}
