"""What training minimizes: a weighted sum of registered loss terms, each given the batch's `LossInputs`.

    python -m jaxcolor.main --config=configs/unet_cls.py:local --config.losses.l1_decoded=0.1 \
        --config.loss_options.l1_decoded.temperature=0.38

`config.loss` is one term, at weight `config.losses.<config.loss>` (unset: 1); every other term whose weight
`config.losses.<name>` is set and non-zero is added (above: cross-entropy + 0.1 l1_decoded). A weight of 0 removes a
term, config.loss's too (`--config.losses.cross_entropy=0 --config.losses.l1_decoded=1` trains on l1_decoded
alone); no term left fails before compilation. Weights are typed placeholders (unset: None) so that the command
line can set them. A term's options are `config.loss_options.<name>.<option>`, filled from its keyword defaults
(`config_fields`; left at None: the term's own default); config.loss's are overlaid by `config.loss_kwargs`. A term
at weight 1 adds its raw value, so config.loss alone gives the kernel's numbers exactly. Each term's raw value
and its weighted share are logged (train/loss/<name>, train/loss/<name>_weighted) next to the total (train/loss).
A config.json written before this meaning (any non-zero weight replaced config.loss) reads through
`upgrade_saved_config`.

Stateful terms (perceptual, adversarial) keep their state in `TrainState.loss_state[name]`: the objective
creates it (`init_state`), hands it to the term with the batch, and runs the terms' own updates after the
model's gradient (`update`, e.g. the discriminator's step).
"""
from __future__ import annotations

import copy
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
    """(total, {"loss/<name>": raw, "loss/<name>_weighted": weight * raw}) for every term, one included;
    a term at weight 1 adds its raw value unmultiplied."""
    total, logged = None, {}
    for name, weight, fn in self.terms:
      raw = fn(x, x.loss_state[name]) if name in self.stateful else fn(x)
      share = raw if weight == 1.0 else weight * raw
      total = share if total is None else total + share
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


def _keyword_options(name: str) -> list[inspect.Parameter]:
  """The options of term `name`: the keyword-only parameters of its kernel or term function (not the arrays)."""
  spec = losses.loss_spec(name)
  return [p for p in inspect.signature(spec.kernel or spec.fn).parameters.values()
          if p.kind is p.KEYWORD_ONLY and p.name not in ("pixel_weights", "mask")]


def config_fields() -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
  """`config.losses` (every registered term's weight, a float placeholder: unset) and `config.loss_options` (each
  term's keyword options at their defaults; a default of None becomes a typed placeholder), for jaxcolor.defaults."""
  weights, options = ml_collections.ConfigDict(), ml_collections.ConfigDict()
  for name in losses.LOSSES:
    weights[name] = ml_collections.config_dict.placeholder(float)
    fields = ml_collections.ConfigDict()
    for p in _keyword_options(name):
      if p.default is None:
        kind = next((t for t in (float, int, bool, str) if t.__name__ in str(p.annotation)), float)
        fields[p.name] = ml_collections.config_dict.placeholder(kind)
      else:
        fields[p.name] = p.default
    options[name] = fields
  return weights, options


def _plain(d: Any) -> dict[str, Any]:
  return dict(d.to_dict() if hasattr(d, "to_dict") else (d or {}))


def terms(config: Mapping[str, Any]) -> tuple[tuple[str, float, dict[str, Any]], ...]:
  """(name, weight, options) of every term the config switches on, in `config.losses` order (config.loss first
  when it has no entry there): config.loss at `config.losses.<config.loss>` (None: 1.0) with
  `config.loss_options.<name>` overlaid by `config.loss_kwargs`, every other term whose weight is set and non-zero
  with `config.loss_options.<name>`; options left at None are dropped (the term's own default applies).
  A ConfigDict or its JSON dict; ValueError when no term is left."""
  loss = str(config["loss"])
  weights = {str(k): v for k, v in _plain(config.get("losses")).items()}
  if loss not in weights:
    weights = {loss: None, **weights}
  if weights[loss] is None:
    weights[loss] = 1.0
  options = _plain(config.get("loss_options"))
  selected = []
  for name, weight in weights.items():
    if weight is None or float(weight) == 0.0:
      continue
    kwargs = {k: v for k, v in _plain(options.get(name)).items() if v is not None}
    if name == loss:
      kwargs.update(_plain(config.get("loss_kwargs")))
    selected.append((name, float(weight), kwargs))
  if not selected:
    raise ValueError(f"no loss term left: config.losses.{loss}=0 removes config.loss={loss!r} and no other "
                     f"config.losses.<name> is set above 0; registered losses: {', '.join(sorted(losses.LOSSES))}")
  return tuple(selected)


def effective_weights(config: Mapping[str, Any]) -> dict[str, float]:
  """{term: the weight it trains with (0.0: off)} for config.loss and every term named in config.losses: equal for
  two configs that minimize the same sum (an unset weight and 0.0 alike; config.loss unset and 1.0 alike), so a
  resume compares these rather than the raw fields. ValueError when no term is left."""
  active = {name: weight for name, weight, _ in terms(config)}
  names = set(_plain(config.get("losses"))) | {str(config["loss"])}
  return {name: active.get(name, 0.0) for name in sorted(names)}


def check(config: Any, provides: Mapping[str, bool]) -> None:
  """Fails (ValueError) for unknown terms, bad weights or options, a term that does not fit the head, or a
  need (losses.NEEDS) the config does not provide (`provides`: need -> whether it is available)."""
  for name, weight, options in terms(config):
    spec = losses.loss_spec(name)  # unknown names list the choices
    where = f"config.loss={name!r}" if name == config.loss else f"loss {name!r}"
    if not weight >= 0.0:
      raise ValueError(f"config.losses.{name}={weight}: a weight must be >= 0")
    if config.head not in spec.heads:
      fitting = sorted(n for n, s in losses.LOSSES.items() if config.head in s.heads)
      raise ValueError(f"{where} needs head {' or '.join(map(repr, spec.heads))} but config.head="
                       f"{config.head!r}; losses for {config.head}: {', '.join(fitting)}")
    for need in spec.needs:
      if not provides.get(need, False):
        raise ValueError(f"{where} needs {need}: {losses.NEEDS[need]}, which this config does not give")
    losses.check_options(name, options)
    if spec.stateful:  # the term's own checks (option values, files), before anything compiles
      term = losses.get_term(name, **options)
      if hasattr(term, "check"):
        term.check()
  unknown = sorted(set(_plain(config.get("losses"))) - set(losses.LOSSES))
  if unknown:
    raise ValueError(f"config.losses names {unknown}; registered losses: {', '.join(sorted(losses.LOSSES))}")


def build(config: Mapping[str, Any]) -> Objective:
  """The config's objective (call `check` first: builders.check_config does)."""
  return Objective(tuple((name, weight, losses.get_term(name, **options)) for name, weight, options in terms(config)))


def single(name: str, **options: Any) -> Objective:
  """One term at weight 1: what a config that sets only `config.loss` builds."""
  return Objective(((name, 1.0, losses.get_term(name, **options)),))


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def upgrade_saved_config(config: Mapping[str, Any]) -> dict[str, Any]:
  """A config.json's dict (as written by any version) in today's meaning of `config.losses`, building the same
  objective its run trained; a new dict, the input is left as it is.

  Before, every weight was a number (0.0: off) and any non-zero one replaced config.loss: the run minimized the
  non-zero terms with their `loss_options` and ignored `loss_kwargs`; with none set, config.loss alone with
  `loss_kwargs` (its `loss_options` ignored). So a dict whose weights are all numbers becomes: all zero -> every
  weight None and config.loss's `loss_options` back at the term's defaults (unknown ones None); some non-zero ->
  the zeros None, config.loss's weight 0.0 where it was 0 (it was dropped) and `loss_kwargs` {}. A dict with a None
  weight (written since) or without "losses" (written before terms could be composed) comes back unchanged.
  The ambiguity: a new config that set every registered term's weight explicitly has no None and reads as an old
  one; that changes its objective only where all its weights are 0 (then config.loss alone, not an error) or its
  `loss_kwargs` are not empty (then dropped)."""
  config = copy.deepcopy(dict(config))
  weights = config.get("losses")
  if not isinstance(weights, Mapping) or not all(_is_number(w) for w in weights.values()):
    return config
  loss = config.get("loss")
  if all(float(w) == 0.0 for w in weights.values()):
    config["losses"] = {name: None for name in weights}
    options = (config.get("loss_options") or {}).get(loss)
    if isinstance(options, dict) and loss in losses.LOSSES:
      defaults = {p.name: p.default for p in _keyword_options(loss)}
      config["loss_options"][loss] = {k: defaults.get(k) for k in options}
    return config
  config["losses"] = {name: None if float(w) == 0.0 else w for name, w in weights.items()}
  if float(weights.get(loss, 0.0)) == 0.0:
    config["losses"][loss] = 0.0
  config["loss_kwargs"] = {}
  return config
