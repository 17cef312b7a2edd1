"""config.loss as one weighted term among config.losses (issue 31): every config in configs/ and experiments/
builds the objective it built before, and config.json written before the change (any non-zero weight replaced
config.loss) reads through `objective.upgrade_saved_config` into the objective its run trained.

The oracle is the old term selection, written out here: the terms of config.losses with a non-zero weight and
their config.loss_options (None options dropped), or, with none, config.loss at weight 1 with config.loss_kwargs."""
from __future__ import annotations

import copy
import importlib
import inspect
import json
import pathlib
from collections.abc import Mapping
from typing import Any

import ml_collections
import pytest

from experiments.architectures import run as architectures
from experiments.loss_terms import run as loss_terms
from experiments.progressive_resizing import run as progressive
from experiments.regression_vs_classification import run as rvc
from jaxcolor import defaults, losses
from jaxcolor.losses import objective

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_NAMES = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.stem not in ("default", "__init__"))
VARIANTS = ("", "local")  # configs/default.py's VARIANTS, which every config accepts
SAVED = sorted((REPO / "tests" / "data").glob("*config*.json")) + sorted(
    (REPO / "jaxcolor" / "reference_models").glob("*/config.json"))  # the shipped models' (guided's: new format)


def old_terms(config: Mapping[str, Any]) -> list[tuple[str, float, dict[str, Any]]]:
  """The objective the code before issue 31 built from a config's JSON dict (every weight a number)."""
  weights = {str(k): float(v) for k, v in (config.get("losses") or {}).items() if float(v) != 0.0}
  if not weights:
    return [(config["loss"], 1.0, dict(config.get("loss_kwargs") or {}))]
  options = config.get("loss_options") or {}
  return [(name, w, {k: v for k, v in (options.get(name) or {}).items() if v is not None})
          for name, w in weights.items()]


def effective(selected) -> list[tuple[str, float, dict[str, Any]]]:
  """(name, weight, options) with every option the term takes, the unset ones at the term's default: two
  selections are the same objective exactly when these are equal."""
  out = []
  for name, weight, options in selected:
    spec = losses.loss_spec(name)
    params = inspect.signature(spec.kernel or spec.fn).parameters.values()
    full = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("pixel_weights", "mask")}
    assert set(options) <= set(full), (name, options)
    out.append((name, float(weight), {**full, **options}))
  return out


def as_old(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as the code before issue 31 made it: the same, with the old default weight 0.0 for every
  unset one (no config in configs/ or experiments/ sets a weight to None)."""
  d = config.to_dict()
  d["losses"] = {k: 0.0 if v is None else v for k, v in d["losses"].items()}
  return d


def _configs() -> list[tuple[str, ml_collections.ConfigDict]]:
  out = [(f"{name}:{variant}", importlib.import_module(f"configs.{name}").get_config(variant))
         for name in CONFIG_NAMES for variant in VARIANTS]
  studies = {"regression_vs_classification": rvc.make_runs(300, 32),
             "architectures": architectures.make_runs(300, 32), "progressive_resizing": progressive.make_runs(100, 16),
             "loss_terms": loss_terms.make_runs(600, 32, "vgg.h5")}
  return out + [(f"{study}/{r.name}", r.config) for study, runs in studies.items() for r in runs]


CONFIGS = _configs()


@pytest.mark.parametrize("name, config", CONFIGS, ids=[n for n, _ in CONFIGS])
def test_every_config_builds_the_objective_it_built_before(name, config):
  # configs/ and experiments/ were not edited for issue 31: each still sets numbers only where it sets a
  # weight, and those keep their old objective (reference_vivid's 0.0 for accurate's l1 and colorfulness now
  # removes them; reference_accurate's l1 = 1.0 is config.loss's own weight).
  assert effective(objective.terms(config)) == effective(old_terms(as_old(config))), name
  assert effective(objective.terms(objective.upgrade_saved_config(as_old(config)))) == effective(
      objective.terms(config)), name  # its config.json, written before the change, reads back to the same


def test_composed_configs_are_covered():
  """The audit above sees the configs that compose terms, so it is not only single-loss configs."""
  composed = {name for name, config in CONFIGS if len(objective.terms(config)) > 1}
  assert {"reference_accurate:", "reference_vivid:local", "reference_guided:", "loss_terms/l2_perceptual",
          "loss_terms/l2_adversarial", "loss_terms/ce_l1_decoded"} <= composed
  assert [n for n, _, _ in objective.terms(dict(CONFIGS)["reference_vivid:"])] == ["cross_entropy", "l1_decoded"]


def _old_default(**changes: Any) -> dict[str, Any]:
  """defaults.get_config() as a config.json written before issue 31: every weight 0.0, then `changes` (dotted)."""
  d = defaults.get_config().to_dict()
  d["losses"] = {k: 0.0 for k in d["losses"]}
  for path, value in changes.items():
    *parents, key = path.split(".")
    node = d
    for p in parents:
      node = node[p]
    node[key] = value
  return json.loads(json.dumps(d))


OLD_CASES = {
    "none_set": _old_default(loss="l1"),
    # the old code ignored loss_options for the single config.loss: its loss_kwargs alone
    "none_set_with_kwargs": _old_default(**{"loss": "huber", "loss_kwargs": {"delta": 0.2},
                                            "loss_options.huber.delta": 0.5}),
    "none_set_options_ignored": _old_default(**{"loss": "l1_decoded", "head": "classification",
                                                "loss_options.l1_decoded.temperature": 0.5,
                                                "loss_options.l1_decoded.rebalanced": True}),
    "composed_with_config_loss": _old_default(**{"loss": "l1", "losses.l1": 1.0, "losses.colorfulness": 0.02,
                                                 "loss_options.colorfulness.temperature": 0.4}),
    "composed_without_config_loss": _old_default(**{"loss": "cross_entropy", "head": "classification",
                                                    "losses.l1_decoded": 0.5, "losses.l2_decoded": 0.25}),
    "composed_config_loss_weighted": _old_default(**{"loss": "huber", "losses.huber": 2.0, "losses.l1": 0.5,
                                                     "loss_kwargs": {"delta": 0.2}, "loss_options.huber.delta": 0.3}),
    "composed_kwargs_ignored": _old_default(**{"loss": "huber", "losses.l2": 1, "loss_kwargs": {"delta": 0.2}}),
    # a config.json written before config.loss's term was registered: no entry for it among the weights
    "composed_config_loss_missing": {**_old_default(**{"losses.l1": 1.0}), "loss": "my_term"},
}


@pytest.mark.parametrize("case", sorted(OLD_CASES))
def test_an_old_config_json_builds_the_objective_its_run_trained(case):
  saved = OLD_CASES[case]
  before = copy.deepcopy(saved)
  upgraded = objective.upgrade_saved_config(saved)
  assert saved == before  # the input is not mutated
  assert json.loads(json.dumps(upgraded)) == upgraded  # still a JSON dict
  want = old_terms(saved)
  assert effective(objective.terms(upgraded)) == effective(want)
  assert effective(objective.terms(ml_collections.ConfigDict(upgraded))) == effective(want)  # as a ConfigDict too
  assert objective.upgrade_saved_config(upgraded) == upgraded  # an upgraded dict is a new one: left as it is
  assert any(w is None for w in upgraded["losses"].values())


def test_the_upgrade_rewrites_only_what_the_meaning_needs():
  composed = objective.upgrade_saved_config(OLD_CASES["composed_without_config_loss"])
  assert composed["losses"] == {**{k: None for k in composed["losses"]}, "cross_entropy": 0.0, "l1_decoded": 0.5,
                                "l2_decoded": 0.25}  # config.loss was dropped: weight 0
  assert objective.upgrade_saved_config(OLD_CASES["composed_kwargs_ignored"])["loss_kwargs"] == {}
  single = objective.upgrade_saved_config(OLD_CASES["none_set_with_kwargs"])
  assert set(single["losses"].values()) == {None} and single["loss_kwargs"] == {"delta": 0.2}
  assert single["loss_options"]["huber"] == {"delta": 10.0 / 110.0}  # ignored before: back at the term's default
  untouched = _old_default(loss="l2")
  assert objective.upgrade_saved_config(untouched) == {**untouched, "losses": {k: None for k in untouched["losses"]}}


def test_new_and_pre_composition_configs_come_back_unchanged():
  new = json.loads(defaults.get_config().to_json())
  new["losses"]["l1"] = 0.0
  new["losses"]["colorfulness"] = 0.5
  assert objective.upgrade_saved_config(new) == new and objective.upgrade_saved_config(new) is not new
  no_losses = {k: v for k, v in new.items() if k not in ("losses", "loss_options")}
  assert objective.upgrade_saved_config(no_losses) == no_losses


@pytest.mark.parametrize("path", SAVED, ids=[str(p.relative_to(REPO)) for p in SAVED])
def test_saved_config_files_build_what_they_trained(path):
  saved = json.loads(path.read_text())
  upgraded = objective.upgrade_saved_config(saved)
  if any(w is None for w in (saved.get("losses") or {}).values()):  # written since issue 31: read as it is
    assert upgraded == saved
  else:
    assert effective(objective.terms(upgraded)) == effective(old_terms(saved))


def test_saved_config_files_cover_both_old_kinds():
  """tests/data holds a config.json from before config.losses existed; the shipped models' compose terms."""
  kinds = {"losses" in (d := json.loads(p.read_text())) and any(d["losses"].values()) for p in SAVED}
  assert kinds == {False, True}
  assert objective.terms(json.loads((REPO / "tests/data/config_vivid_2026-12-01.json").read_text())) == (
      ("cross_entropy", 1.0, {}),)
