"""Train state and the pure train / eval steps, shared by the jit and pmap paths.

The steps are module-level pure functions; everything static (model, optimizer, task, loss) is bound with
`functools.partial` by the trainer. Randomness is one key folded with the step, so a resumed run draws the
same numbers as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxcolor import hint_propagation
from jaxcolor import hints as hints_lib
from jaxcolor.losses import head_loss
from jaxcolor import task as task_lib
from jaxcolor.colorspace import color
from jaxcolor.losses.inputs import LossInputs

Array = jnp.ndarray


class TrainState(flax.struct.PyTreeNode):
  """Everything a step changes: step (scalar int32), params, batch_stats, opt_state, rng (raw key data), and
  the state of stateful loss terms ({} unless the objective has some, e.g. a discriminator)."""
  step: Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: Array  # uint32 key data of the run's base key (folded with the step in each step)
  loss_state: Any = flax.struct.field(default_factory=dict)  # {term name: its state}, objective.init_state


RNG_IMPL = "rbg"  # XLA:CPU compiles threefry-based initializers ~6x slower; rbg is ample for init and dropout


def make_rng(seed: int) -> Array:
  """The run's base key (typed, `RNG_IMPL`)."""
  return jax.random.key(seed, impl=RNG_IMPL)


def init_state(rng: Array, *, model: nn.Module, tx: optax.GradientTransformation,
               image_shape: tuple[int, int, int, int]) -> TrainState:
  """Initializes parameters for L of shape image_shape[:-1] + (1,) and the optimizer state (jit-able)."""
  init_rng, run_rng = jax.random.split(rng)
  l = jnp.zeros(image_shape[:-1] + (1,), jnp.float32)
  variables = model.init({"params": init_rng}, l, train=False)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                    rng=jax.random.key_data(run_rng))


def train_step(state: TrainState, batch: dict[str, Array], *, model: nn.Module,
               tx: optax.GradientTransformation, task: task_lib.ColorTask,
               loss_fn: Callable[[LossInputs], tuple[Array, dict[str, Array]]],
               axis_name: str | None = None, pass_loss_to_optimizer: bool = False,
               hint_sampler: hints_lib.HintSampler | None = None) -> tuple[TrainState, dict[str, Array]]:
  """One optimizer step on batch {"image": uint8 (B, H, W, 3), "mask": bool (B,)}.

  `loss_fn` (an `objective.Objective`) maps the batch's LossInputs to (total, {logged term: value}); its
  stateful terms then take their own steps on the same batch (`Objective.update`, e.g. a discriminator).
  Under pmap (`axis_name` set) gradients, losses and BatchNorm statistics are averaged over devices; the
  model must then have been built with bn_axis_name=axis_name. When every term takes a deferred 1x1 head
  (`loss_fn.head_input`, e.g. cross-entropy), the head's projection is left to the loss (`head_loss`, on CPU).
  `hint_sampler`: the model takes color hints, simulated from the truth with the step's key (`jaxcolor.hints`).
  Returns the new state and scalar metrics.
  """
  rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng, impl=RNG_IMPL), state.step)
  l, ab, target, pixel_weights = task.batch_targets(batch["image"])
  mask = batch.get("mask")
  defer = task.head == "classification" and getattr(loss_fn, "head_input", False)
  extra = {}
  if hint_sampler is not None:  # from the full-resolution truth (`ab` above is at the output resolution)
    hint_rng = jax.random.fold_in(rng, hints_lib.STREAM)
    if axis_name is not None:  # pmap: each device's shard draws its own hints
      hint_rng = jax.random.fold_in(hint_rng, jax.lax.axis_index(axis_name))
    extra["hints"] = hint_sampler(hint_rng, task.full_ab(batch["image"]))

  def loss_of(params):
    with head_loss.deferred_head() if defer else contextlib.nullcontext():
      outputs, updates = model.apply({"params": params, "batch_stats": state.batch_stats}, l, train=True,
                                     rngs={"dropout": rng}, mutable=["batch_stats"], **extra)
    inputs = LossInputs(outputs=outputs, images=batch["image"], l=l, ab=ab, target=target,
                        pixel_weights=pixel_weights, mask=mask, step=state.step, rng=rng, task=task,
                        loss_state=state.loss_state)
    total, terms = loss_fn(inputs)
    return total, (updates, terms, inputs if state.loss_state else None)  # the inputs only for stateful terms

  (loss, (updates, terms, inputs)), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
  if axis_name is not None:
    grads = jax.lax.pmean(grads, axis_name)
    loss, terms = jax.lax.pmean((loss, terms), axis_name)
  loss_state, side = loss_fn.update(inputs, axis_name) if state.loss_state else (state.loss_state, {})
  finite = jnp.all(jnp.isfinite(jnp.stack([loss, *side.values()])))
  value = {"value": loss} if pass_loss_to_optimizer else {}
  opt_updates, opt_state = tx.update(grads, state.opt_state, state.params, **value)
  params = optax.apply_updates(state.params, opt_updates)
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                            batch_stats=updates.get("batch_stats", state.batch_stats), loss_state=loss_state)
  metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "finite": finite, **terms, **side}
  return new_state, metrics


def predict_ab_from_l(variables: dict[str, Any], l: Array, *, model: nn.Module, task: task_lib.ColorTask,
                      decoding: str | None = None, temperature: float | None = None,
                      hints: Array | None = None, flip: bool = False) -> Array:
  """L (B, H, W, 1) in [0, 100] (and hint channels (B, H, W, 3) for a hint-taking model) -> ab (B, H, W, 2):
  the inference path of colorize / evaluate.

  flip: average with the prediction for the mirrored photo (and mirrored hints), mirrored back (test-time
  augmentation, `config.inference_flip`): one network call on 2B photos; the result is mirror-equivariant.
  """
  if flip:
    mirror = lambda x: x[:, :, ::-1]
    both = lambda x, y: jnp.concatenate([x, mirror(y)])
    ab = predict_ab_from_l(variables, both(l, l), model=model, task=task, decoding=decoding,
                           temperature=temperature, hints=None if hints is None else both(hints, hints))
    return 0.5 * (ab[:l.shape[0]] + mirror(ab[l.shape[0]:]))
  outputs = model.apply(variables, l, train=False, **({} if hints is None else {"hints": hints}))
  return task.to_ab(outputs, l, decoding, temperature)


def predict_ab(variables: dict[str, Any], images: Array, hints: Array | None = None,
               temperature: Array | float | None = None, *, model: nn.Module, task: task_lib.ColorTask,
               decoding: str | None = None, size: int | None = None,
               hint_sampler: hints_lib.HintSampler | None = None, num_hints: int = 0, hint_seed: int = 0,
               propagation: hint_propagation.Propagation | None = None, flip: bool = False) -> Array:
  """uint8 RGB (B, H, W, 3) -> ab (B, H, W, 2) in Lab units: the one inference path (a run's evaluations,
  colorize, evaluate, the app), jitted with everything after `*` bound.

  size: the model sees the photos resized to size x size (antialiased cubic, on device) and its ab is upsampled
  back to H x W; None: it runs at H x W. hints: hint channels (B, s, s, 3) at the model's input size, or None;
  num_hints > 0 instead simulates that many per photo from its own colors as in training (`hint_sampler`, each
  photo's from the seed `hint_seed` and its pixels, `hints.photo_keys`: the evaluation of hints). temperature:
  the annealed mean's (default: the run's); an argument, so a new value compiles nothing (the app's slider).
  propagation: the hints' residuals spread along L's edges after the network (`jaxcolor.hint_propagation`; with
  hints only; the network also runs without them when its `network_share` is below 1). flip: average with the
  mirrored photo's prediction (`predict_ab_from_l`).
  """
  b, h, w, _ = images.shape
  rgb = color.to_float_rgb(images)
  if size is not None and (h, w) != (size, size):
    rgb = jnp.clip(jax.image.resize(rgb, (b, size, size, 3), "cubic", antialias=True), 0.0, 1.0)
  l, ab = color.rgb_to_l_ab(rgb)
  if num_hints:  # each photo's from its own pixels and the seed: the same whatever its batch
    hints = hints_lib.per_photo(hint_sampler, hints_lib.photo_keys(hint_seed, images), ab, num_hints)
  predict = functools.partial(predict_ab_from_l, variables, model=model, task=task, decoding=decoding,
                              temperature=temperature, flip=flip)
  if propagation is None or hints is None:
    return task_lib.upsample(predict(l, hints=hints), h, w)  # (B, s, s, 2) -> (B, H, W, 2)
  if propagation.network_share == 1:
    ab, unhinted = predict(l, hints=hints), None
  else:  # the network with and without the hints, in one call on 2B photos (`Propagation.blend`)
    both = predict(jnp.concatenate([l, l]), hints=jnp.concatenate([hints, jnp.zeros_like(hints)]))
    ab, unhinted = both[:b], both[b:]
  return task_lib.upsample(propagation(ab, hints, l, unhinted), h, w)
