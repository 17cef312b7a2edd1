"""The experiment studies: their runs are valid and comparable, and the shared runner trains, caches and reports."""
import json

import numpy as np
import pytest
from PIL import Image

from experiments import runner
from experiments.architectures import run as architectures
from experiments.loss_terms import run as loss_terms
from experiments.progressive_resizing import run as progressive
from experiments.regression_vs_classification import run as rvc
from jaxcolor import builders

STUDIES = {"regression_vs_classification": rvc.make_runs(300, 32), "architectures": architectures.make_runs(300, 32),
           "progressive_resizing": progressive.make_runs(100, 16),
           "loss_terms": loss_terms.make_runs(600, 32, __file__)}  # any existing file passes the perceptual check


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_study_configs_are_valid(study):
  runs = STUDIES[study]
  assert len({r.name for r in runs}) == len(runs)
  for r in runs:
    builders.check_config(r.config)


def _flat(config):
  out = {}
  def walk(prefix, d):
    for k, v in d.items():
      (walk(f"{prefix}{k}.", v) if isinstance(v, dict) else out.__setitem__(prefix + k, v))
  walk("", config.to_dict())
  return out


def test_regression_vs_classification_differs_only_in_the_objective():
  configs = [_flat(r.config) for r in STUDIES["regression_vs_classification"]]
  differing = {k for c in configs for k in c if any(c.get(k) != d.get(k) for d in configs)}
  assert differing == {"head", "loss", "rebalance"}


def test_loss_terms_differ_only_in_the_objective():
  configs = [_flat(r.config) for r in STUDIES["loss_terms"]]
  differing = {k for c in configs for k in c if any(c.get(k) != d.get(k) for d in configs)}
  assert differing == {"head", "loss", "losses.l2", "losses.perceptual", "losses.adversarial",
                       "losses.cross_entropy", "losses.l1_decoded", "loss_options.perceptual.weights"}


def test_architectures_share_study_one_runs_and_budget():
  shared = {r.name: _flat(r.config) for r in STUDIES["regression_vs_classification"]}
  runs = STUDIES["architectures"]
  for r in runs:
    if r.name in shared:  # trained once for both studies (same workdir, same config)
      assert _flat(r.config) == shared[r.name]
  budget_keys = ("dataset", "image_size", "batch_size", "total_steps", "learning_rate", "schedule", "optimizer")
  for key in budget_keys:
    assert len({_flat(r.config)[key] for r in runs}) == 1, key
  assert {r.config.model for r in runs} == {"unet", "cnn_baseline", "autoencoder", "eccv16"}


def test_progressive_and_fixed_train_on_equal_pixels():
  runs = {r.name: r.config for r in STUDIES["progressive_resizing"]}
  def pixels(c):
    sizes = [c.image_size] * c.total_steps
    for start, size in c.progressive_sizes:
      sizes[start:] = [size] * (c.total_steps - start)
    return c.batch_size * sum(s * s for s in sizes)
  p, f = pixels(runs["progressive"]), pixels(runs["fixed"])
  assert {s for _, s in runs["progressive"].progressive_sizes} == {32, 64, 128}
  assert abs(p - f) <= runs["fixed"].batch_size * 128 ** 2 / 2  # within half a step at 128 px


def _tiny_runs():
  from configs import unet_cls
  runs = []
  for head, loss in (("regression", "l2"), ("classification", "cross_entropy")):
    c = unet_cls.get_config("local")
    c.model_kwargs.features = (4, 8)
    c.head, c.loss, c.total_steps, c.checkpoint_every = head, loss, 2, 2
    runs.append(runner.Run(f"tiny_{loss}", c, head))
  return runs


@pytest.mark.slow  # two training runs and their evaluations: ~80 s on 2 cores
def test_run_study_end_to_end_and_cached(tmp_path):
  root, out = tmp_path / "runs", tmp_path / "study"
  evalset = runner.EvalSet("skimage_photos", 32)
  results = runner.run_study(_tiny_runs(), [evalset], root=str(root), data_dir=str(tmp_path / "tfds"),
                             out_dir=out, figure_set=evalset)
  assert results["tiny_l2"]["budget"]["images"] == 2 * 8
  rows = results["tiny_cross_entropy"]["eval"][evalset.label]
  assert {"model (mode)", "model (annealed_mean, T=0.38)", "grayscale (ab = 0)"} <= set(rows)
  assert abs(rows["grayscale (ab = 0)"]["colorfulness"]) < 1.0
  md = (out / "results.md").read_text()
  assert "| tiny_l2 | - |" in md and "| grayscale (ab = 0) |" in md and "annealed_mean, T=0.2" in md
  assert json.loads((out / "results.json").read_text())["tiny_l2"]["budget"]["steps"] == 2
  grid = np.asarray(Image.open(out / "figure.png"))
  assert grid.shape[1] == 128 * 4 and grid.std() > 10  # gray | two runs | truth

  stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.json")}
  runner.run_study(_tiny_runs(), [evalset], root=str(root), data_dir=str(tmp_path / "tfds"), out_dir=out)
  assert {p: p.stat().st_mtime_ns for p in root.rglob("*.json")} == stamps  # nothing retrained or re-evaluated


def test_release_wall_time_leaves_out_the_time_a_run_was_down():
  from experiments.reference_colorizers import release
  logs = [0, 100, 200, 300, 3900, 4000, 4110]  # seconds; stopped after 300, restarted an hour later
  assert release.training_minutes(logs) == pytest.approx((300 + 100 + 110) / 60)
  assert release.training_minutes([0, 60, 120]) == pytest.approx(2.0)
  assert release.training_minutes([5.0]) == 0.0


def test_model_card_names_the_objective_as_trained():
  import ml_collections
  from experiments.reference_colorizers import release
  cfg = ml_collections.ConfigDict({"loss": "cross_entropy", "losses": {"cross_entropy": 1.0, "l1_decoded": 0.3,
                                                                       "l2": 0.0}})
  assert release.loss_terms(cfg) == "1 x cross_entropy + 0.3 x l1_decoded"
  cfg.losses = {"l1": 0.0}
  assert release.loss_terms(cfg) == "cross_entropy"
