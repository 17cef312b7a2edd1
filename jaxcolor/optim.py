"""Optimizer from a config: optimizer x lr schedule, optional clipping and a step-limited encoder freeze.

The config is a full run config: every field below has its one default in `jaxcolor.defaults` (no fallbacks
here). `check_optim_config` validates them before anything is compiled, and names the field and the choices
in its ValueError:

- optimizer: one of OPTIMIZERS, "adam", "adamw" or "sgd".
- learning_rate: base (peak) learning rate, > 0.
- b1, b2, eps: Adam/AdamW moments (Zhang et al. 2016 used betas (0.9, 0.99)).
- momentum, nesterov: SGD; momentum 0 is plain SGD.
- weight_decay: "adamw": decoupled decay as in optax.adamw (update += wd * param, then scaled by the
  learning rate, the PyTorch convention); "adam" / "sgd": L2 regularization, i.e. wd * param is added to
  the gradient (optax.add_decayed_weights before the optimizer), as Caffe's weight_decay did. Needs
  `params` passed to `tx.update`.
- weight_decay_on: which parameters decay, one of WEIGHT_DECAY_ON: "all" (every parameter, as Caffe
  without per-layer decay_mult) or "kernels" (only conv / dense kernels, the params named "kernel": no
  decay of biases and BatchNorm scales and offsets, as Keras' kernel_regularizer and the usual AdamW setups).
- schedule: one of SCHEDULES:
  - "constant": learning_rate at every step.
  - "warmup_cosine": linear 0 -> learning_rate over warmup_steps, then cosine decay to
    end_lr_factor x learning_rate at total_steps; needs total_steps > warmup_steps.
  - "step": learning_rate x decay_factor ** (step // decay_every) (decay_every required).
  - "reduce_on_plateau": constant base lr scaled by optax.contrib.reduce_on_plateau, which is fed the
    loss: the caller must pass `value=loss` to `tx.update` (see `needs_value`). Fields plateau_patience,
    plateau_factor, plateau_cooldown, plateau_accumulation_size (number of values averaged before each
    plateau check: 1 for an eval loss, more for noisy train losses).
- total_steps: run length (the cosine schedule's end).
- grad_clip_norm: clip the global gradient norm to this value first in the chain; 0 = off.
- freeze_prefixes, freeze_steps: for steps < freeze_steps, params whose path starts with one of
  the prefixes get zero updates and their optimizer state is held (Adam's bias correction starts when
  they thaw); their gradients are also zeroed before clipping, so they do not use the clip budget.
  A prefix is a "/"-joined path from the top of the params tree, e.g. "encoder" or "vgg/block1";
  freeze_steps >= total_steps freezes for the whole run. The switch is a counter in the optimizer
  state, so one jitted step serves both phases. The lr schedule counts global steps for all params.
- lr_multipliers: ((prefix, factor), ...): the updates of params under a prefix are scaled by factor,
  e.g. (("efficientnet", 0.3),) fine-tunes a pretrained encoder at 0.3x the decoder's learning rate (the
  schedule, warm-up included, applies to both). A param under several prefixes gets their product.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax import contrib

def kernel_mask(params: Any) -> Any:
  """Pytree of bool like params: True for the params named "kernel" (conv and dense weights)."""
  return jax.tree_util.tree_map_with_path(lambda p, _: _path_names(p)[-1:] == ("kernel",), params)


# config.weight_decay_on -> mask of the params that decay (None: all of them).
WEIGHT_DECAY_ON: dict[str, Callable[[Any], Any] | None] = dict(all=None, kernels=kernel_mask)


def _decay(config: Any) -> optax.GradientTransformation:
  """Adds weight_decay * param to the update of the params that config.weight_decay_on names."""
  return optax.add_decayed_weights(config.weight_decay, mask=WEIGHT_DECAY_ON[config.weight_decay_on])


def _adam(config: Any) -> optax.GradientTransformation:
  l2 = [_decay(config)] if config.weight_decay else []
  return optax.chain(*l2, optax.scale_by_adam(config.b1, config.b2, config.eps))


def _adamw(config: Any) -> optax.GradientTransformation:
  return optax.chain(optax.scale_by_adam(config.b1, config.b2, config.eps), _decay(config))


def _sgd(config: Any) -> optax.GradientTransformation:
  l2 = [_decay(config)] if config.weight_decay else []
  mom = [optax.trace(config.momentum, bool(config.nesterov))] if config.momentum else []
  return optax.chain(*l2, *mom) if l2 or mom else optax.identity()  # chain() of nothing fails


# name -> update direction before the learning rate (the lr and its schedule are applied after).
OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = dict(adam=_adam, adamw=_adamw,
                                                                             sgd=_sgd)


def _warmup_cosine(config: Any) -> optax.Schedule:
  lr = float(config.learning_rate)
  steps = int(config.warmup_steps), int(config.total_steps)
  return optax.warmup_cosine_decay_schedule(0.0, lr, *steps, end_value=float(config.end_lr_factor) * lr)


def _step(config: Any) -> optax.Schedule:
  return optax.exponential_decay(float(config.learning_rate), int(config.decay_every),
                                 float(config.decay_factor), staircase=True)


def _constant(config: Any) -> optax.Schedule:
  return optax.constant_schedule(float(config.learning_rate))


# name -> step -> base lr; "reduce_on_plateau" adds its loss-driven scale on top of the constant base.
SCHEDULES: dict[str, Callable[[Any], optax.Schedule]] = dict(
    constant=_constant, warmup_cosine=_warmup_cosine, step=_step, reduce_on_plateau=_constant)


def _split_prefixes(prefixes: Any, field: str) -> tuple[tuple[str, ...], ...]:
  """"/"-joined param path prefixes (config.`field`) -> tuples of names; a clear error for anything else."""
  if isinstance(prefixes, str) or not all(isinstance(p, str) and p.strip("/") for p in prefixes):
    raise ValueError(f"config.{field} must be a tuple of non-empty strings, got {prefixes!r}")
  return tuple(tuple(p.strip("/").split("/")) for p in prefixes)


def _lr_multipliers(config: Any) -> tuple[tuple[str, float], ...]:
  """config.lr_multipliers validated: ((non-empty prefix, factor >= 0), ...)."""
  pairs = config.lr_multipliers
  ok = not isinstance(pairs, str) and all(
      isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str) and p[0].strip("/")
      and isinstance(p[1], numbers.Real) and not isinstance(p[1], bool) and p[1] >= 0 for p in pairs)
  if not ok:
    raise ValueError(f"config.lr_multipliers must be ((prefix, factor >= 0), ...), e.g. (('efficientnet', 0.3),), "
                     f"got {pairs!r}")
  return tuple((p, float(m)) for p, m in pairs)


def check_optim_config(config: Any, params: Any = None) -> None:
  """Raises ValueError naming the field (and choices) for a bad optimizer field; `params` checks prefixes."""
  for key, registry in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("weight_decay_on", WEIGHT_DECAY_ON)):
    if config[key] not in registry:
      raise ValueError(f"unknown config.{key} {config[key]!r}; choices: {sorted(registry)}")

  def num(key: str, lo: float, hi: float = float("inf"), lo_open: bool = False, hi_open: bool = False,
          integer: bool = False) -> None:
    v = config[key]
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and (not integer or float(v).is_integer())
    if ok:
      ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
      kind = "an int" if integer else "a number"
      raise ValueError(f"config.{key} must be {kind} in {'(' if lo_open else '['}{lo}, {hi}"
                       f"{')' if hi_open else ']'}, got {v!r}")

  num("learning_rate", 0, lo_open=True)
  num("weight_decay", 0)
  num("b1", 0, 1, hi_open=True)
  num("b2", 0, 1, hi_open=True)
  num("eps", 0)
  num("momentum", 0, 1, hi_open=True)
  num("grad_clip_norm", 0)
  num("freeze_steps", 0, integer=True)
  schedule = config.schedule
  num("total_steps", 1, integer=True)
  if schedule == "warmup_cosine":
    num("warmup_steps", 0, config.total_steps, hi_open=True, integer=True)
    num("end_lr_factor", 0, 1)
  if schedule == "step":
    if config.decay_every is None:
      raise ValueError("config.decay_every is required by schedule 'step'")
    num("decay_every", 1, integer=True)
    num("decay_factor", 0, 1, lo_open=True)
  if schedule == "reduce_on_plateau":
    num("plateau_patience", 1, integer=True)
    num("plateau_factor", 0, 1, lo_open=True, hi_open=True)
    num("plateau_cooldown", 0, integer=True)
    num("plateau_accumulation_size", 1, integer=True)
  prefixes = _split_prefixes(config.freeze_prefixes, "freeze_prefixes")
  if config.freeze_steps > 0 and not prefixes:
    raise ValueError("config.freeze_steps > 0 needs config.freeze_prefixes, e.g. ('encoder',)")
  if params is not None and prefixes:
    frozen_mask(params, config.freeze_prefixes)
  multipliers = _lr_multipliers(config)
  if params is not None and multipliers:
    frozen_mask(params, [p for p, _ in multipliers], field="lr_multipliers")
  if params is not None and config.weight_decay and config.weight_decay_on == "kernels":
    if not any(jax.tree.leaves(kernel_mask(params))):
      raise ValueError('config.weight_decay_on="kernels" but no parameter is named "kernel"')


def _path_names(path: Sequence[Any]) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def frozen_mask(params: Any, prefixes: Sequence[str], field: str = "freeze_prefixes") -> Any:
  """Pytree of bool like params: True where the param path starts with one of the "/"-joined prefixes.

  A prefix that matches no parameter (typically a typo or a model without that encoder) is a ValueError
  naming config.`field` and listing the top-level param names.
  """
  split = _split_prefixes(tuple(prefixes), field)
  paths = [_path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  unmatched = [p for p, s in zip(prefixes, split) if not any(path[:len(s)] == s for path in paths)]
  if unmatched:
    top = sorted({path[0] for path in paths if path})
    raise ValueError(f"config.{field} prefixes {unmatched} match no parameter; top-level param names: {top}")
  return jax.tree_util.tree_map_with_path(
      lambda p, _: any(_path_names(p)[:len(s)] == s for s in split), params)


class FreezeState(NamedTuple):
  """Steps seen (saturating at freeze_steps) and the state of the wrapped transformation."""
  count: jax.Array
  inner: Any


def _freeze_for(inner: optax.GradientTransformation, steps: int) -> optax.GradientTransformationExtraArgs:
  """Zero updates and held inner state while count < steps, then `inner`; a lax.cond, so jit-compatible."""
  inner = optax.with_extra_args_support(inner)

  def init(params: Any) -> FreezeState:
    return FreezeState(jnp.zeros([], jnp.int32), inner.init(params))

  def update(updates: Any, state: FreezeState, params: Any = None, **extra: Any) -> tuple[Any, FreezeState]:
    def thawed() -> tuple[Any, Any]:
      new_updates, new_inner = inner.update(updates, state.inner, params, **extra)
      cast = lambda new, ref: jax.tree.map(lambda a, b: jnp.asarray(a, jnp.asarray(b).dtype), new, ref)
      return cast(new_updates, updates), cast(new_inner, state.inner)

    frozen = lambda: (jax.tree.map(jnp.zeros_like, updates), state.inner)
    new_updates, new_inner = jax.lax.cond(state.count < steps, frozen, thawed)
    return new_updates, FreezeState(jnp.minimum(state.count + 1, steps), new_inner)

  return optax.GradientTransformationExtraArgs(init, update)


def needs_value(config: Any) -> bool:
  """Whether `tx.update` must be called with `value=loss` (the reduce_on_plateau schedule)."""
  return config.schedule == "reduce_on_plateau"


def learning_rate_fn(config: Any) -> optax.Schedule:
  """step -> scheduled lr, for logging; for reduce_on_plateau the base lr (see `current_lr`)."""
  check_optim_config(config)
  return SCHEDULES[config.schedule](config)


def current_lr(opt_state: Any, config: Any, step: Any) -> jax.Array:
  """The lr applied at `step`: the schedule times the reduce_on_plateau scale found in opt_state, if any."""
  lr = jnp.asarray(learning_rate_fn(config)(step), jnp.float32)
  is_plateau = lambda x: isinstance(x, contrib.ReduceLROnPlateauState)
  for leaf in jax.tree.leaves(opt_state, is_leaf=is_plateau):
    if is_plateau(leaf):
      lr = lr * leaf.scale
  return lr


def make_optimizer(config: Any, params: Any = None) -> optax.GradientTransformation:
  """Validated optimizer chain: [clip] -> direction (freeze-partitioned) -> lr schedule -> [plateau].

  `params` (or any tree with their structure) is needed only when freezing, to build the masks.
  """
  check_optim_config(config, params)
  direction = OPTIMIZERS[config.optimizer](config)
  schedule = SCHEDULES[config.schedule](config)
  freeze_steps = int(config.freeze_steps)
  parts: list[optax.GradientTransformation] = []
  if freeze_steps > 0:
    if params is None:
      raise ValueError("make_optimizer needs params when config.freeze_steps > 0 (for the freeze masks)")
    mask = frozen_mask(params, config.freeze_prefixes)
    labels = jax.tree.map(lambda m: "frozen" if m else "trainable", mask)
    parts.append(optax.masked(_freeze_for(optax.identity(), freeze_steps), mask))  # before clipping
    direction = optax.partition(
        {"trainable": direction, "frozen": _freeze_for(direction, freeze_steps)}, labels)
  if config.grad_clip_norm:
    parts.append(optax.clip_by_global_norm(float(config.grad_clip_norm)))
  constant = config.schedule in ("constant", "reduce_on_plateau")  # stateless scale, no count
  lr = float(config.learning_rate) if constant else schedule
  parts += [direction, optax.scale_by_learning_rate(lr)]
  multipliers = _lr_multipliers(config)
  if multipliers and params is None:
    raise ValueError("make_optimizer needs params when config.lr_multipliers is set (for the masks)")
  for prefix, factor in multipliers:
    parts.append(optax.masked(optax.scale(factor), frozen_mask(params, (prefix,), field="lr_multipliers")))
  if needs_value(config):
    parts.append(contrib.reduce_on_plateau(
        factor=float(config.plateau_factor), patience=int(config.plateau_patience),
        cooldown=int(config.plateau_cooldown),
        accumulation_size=int(config.plateau_accumulation_size)))
  return optax.chain(*parts)
