"""What training minimizes: a weighted sum of registered loss terms, each given the batch's `LossInputs`.

    python -m jaxcolor.main --config=configs/unet_cls.py:local --config.losses.cross_entropy=1 \
        --config.losses.l1_decoded=0.1 --config.loss_options.l1_decoded.temperature=0.38

`config.losses` holds a weight for every registered term (0: off); when any is set the run minimizes their
weighted sum, else `config.loss` with `config.loss_kwargs` alone (weight 1: the same numbers as before terms
could be composed). Options of a term are `config.loss_options.<name>.<option>`, filled from the term's
keyword defaults (`config_fields`), so both can be set from the command line. Each term's raw value and its weighted share are logged
(train/loss/<name>, train/loss/<name>_weighted) next to the total (train/loss).

Stateful terms (perceptual, adversarial) keep their state in `TrainState.loss_state[name]`: the objective
creates it (`init_state`), hands it to the term with the batch, and runs the terms' own updates after the
model's gradient (`update`, e.g. the discriminator's step).
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import jax
import ml_collections

from jaxcolor import losses
from jaxcolor.losses.inputs import LossInputs

Array = jnp.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Objective:
  """Terms (name, weight, term function); hashed by identity so it can be a static argument of jit.
  `fused_head=False` keeps the logits even where every term could take the deferred head (benchmarks)."""
  terms: tuple[tuple[str, float, Callable[..., Array]], ...]
  fused_head: bool = True

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(name for name, _, _ in self.terms)

  @property
  def stateful(self) -> tuple[str, ...]:
    """Names of the terms that keep state in TrainState.loss_state."""
    return tuple(name for name in self.names if losses.loss_spec(name).stateful)

  @property
  def head_input(self) -> bool:
    """Every term accepts a deferred 1x1 head (`head_loss.HeadInput`), so the train step may hand it over."""
    return self.fused_head and all(losses.loss_spec(name).head_input for name in self.names)

  def __call__(self, x: LossInputs) -> tuple[Array, dict[str, Array]]:
    """(total, {"loss/<name>": raw, "loss/<name>_weighted": weight * raw}); one term: total = 1 * raw."""
    total, logged = None, {}
    for name, weight, fn in self.terms:
      raw = fn(x, x.loss_state[name]) if name in self.stateful else fn(x)
      share = raw if weight == 1.0 else weight * raw
      total = share if total is None else total + share
      if len(self.terms) > 1:
        logged[f"loss/{name}"], logged[f"loss/{name}_weighted"] = raw, share
    return total, logged

  def init_state(self, rng: Array) -> dict[str, Any]:
    """{name: initial state} of the stateful terms (on the host: a term may read a file); {} if none."""
    return {name: fn.init(jax.random.fold_in(rng, i)) for i, (name, _, fn) in enumerate(self.terms)
            if name in self.stateful}

  def update(self, x: LossInputs, axis_name: str | None = None) -> tuple[dict[str, Any], dict[str, Array]]:
    """The terms' own steps on this batch (`x` holds the model's outputs before its update): the new
    loss_state and their metrics (e.g. loss/adversarial_d)."""
    state, logged = dict(x.loss_state), {}
    for name, _, fn in self.terms:
      if name in self.stateful and hasattr(fn, "update"):
        state[name], m = fn.update(x, x.loss_state[name], axis_name)
        logged.update(m)
    return state, logged


def config_fields() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
  """`config.losses` (every registered term at weight 0) and `config.loss_options` (each term's keyword
  options at their defaults; a default of None becomes a typed placeholder), for jaxcolor.defaults."""
  weights, options = ml_collections.ConfigDict(), ml_collections.ConfigDict()
  for name, spec in losses.LOSSES.items():
    weights[name] = 0.0
    fields = ml_collections.ConfigDict()
    for p in inspect.signature(spec.kernel or spec.fn).parameters.values():
      if p.kind is not p.KEYWORD_ONLY or p.name in ("pixel_weights", "mask"):
        continue
      if p.default is None:
        kind = next((t for t in (float, int, bool, str) if t.__name__ in str(p.annotation)), float)
        fields[p.name] = ml_collections.config_dict.placeholder(kind)
      else:
        fields[p.name] = p.default
    options[name] = fields
  return weights, options


def _plain(d: Any) -> dict[str, Any]:
  return dict(d.to_dict() if hasattr(d, "to_dict") else (d or {}))


def term_weights(config: Any) -> dict[str, float]:
  """{name: weight} of the terms switched on in `config.losses`; none: {config.loss: 1.0}."""
  composed = {str(k): float(v) for k, v in _plain(config.get("losses")).items() if float(v) != 0.0}
  return composed or {str(config.loss): 1.0}


def term_options(config: Any, name: str) -> dict[str, Any]:
  """Options of term `name`: config.loss_kwargs for the single config.loss, else config.loss_options.<name>
  without the options left at None (the term's own default applies)."""
  if not any(float(v) != 0.0 for v in _plain(config.get("losses")).values()) and name == config.loss:
    return _plain(config.loss_kwargs)
  return {k: v for k, v in _plain(_plain(config.get("loss_options")).get(name)).items() if v is not None}


def check(config: Any, provides: Mapping[str, bool]) -> None:
  """Fails (ValueError) for unknown terms, bad weights or options, a term that does not fit the head, or a
  need (losses.NEEDS) the config does not provide (`provides`: need -> whether it is available)."""
  weights = term_weights(config)
  single = not any(float(v) != 0.0 for v in _plain(config.get("losses")).values())
  for name, weight in weights.items():
    spec = losses.loss_spec(name)  # unknown names list the choices
    where = f"config.loss={name!r}" if single else f"loss {name!r}"
    if not weight >= 0.0 or weight != weight:
      raise ValueError(f"config.losses.{name}={weight}: a weight must be >= 0")
    if config.head not in spec.heads:
      fitting = sorted(n for n, s in losses.LOSSES.items() if config.head in s.heads)
      raise ValueError(f"{where} needs head {' or '.join(map(repr, spec.heads))} but config.head="
                       f"{config.head!r}; losses for {config.head}: {', '.join(fitting)}")
    for need in spec.needs:
      if not provides.get(need, False):
        raise ValueError(f"{where} needs {need}: {losses.NEEDS[need]}, which this config does not give")
    losses.check_options(name, term_options(config, name))
    if spec.stateful:  # the term's own checks (option values, files), before anything compiles
      term = losses.get_term(name, **term_options(config, name))
      if hasattr(term, "check"):
        term.check()
  unknown = sorted(set(_plain(config.get("losses"))) - set(losses.LOSSES))
  if unknown:
    raise ValueError(f"config.losses names {unknown}; registered losses: {', '.join(sorted(losses.LOSSES))}")


def build(config: Any) -> Objective:
  """The config's objective (call `check` first: builders.check_config does)."""
  return Objective(tuple((name, weight, losses.get_term(name, **term_options(config, name)))
                         for name, weight in term_weights(config).items()))


def single(name: str, **options: Any) -> Objective:
  """One term at weight 1: what a config that sets only `config.loss` builds."""
  return Objective(((name, 1.0, losses.get_term(name, **options)),))
