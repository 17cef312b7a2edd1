"""jaxcolor.inference.reference: the shipped models (a release regression test against their cards), export and loading
without pickle, colorize / evaluate with no workdir, and fine-tuning from a shipped model (config.init_from, which
`jaxcolor.run_dir` resolves)."""
import importlib
import json
import os
import pathlib
import sys

import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxcolor import builders, colorize, evaluate, run_dir, train
from jaxcolor.inference import reference
from jaxcolor.inference.colorizer import Colorizer
from run_helpers import write_untrained_run

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))



# --- the release: every shipped model loads, and colorizes Kodak photos as its card says --------------------

@pytest.mark.parametrize("name", sorted(run_dir.REFERENCE_MODELS))
def test_shipped_model_is_installed_small_and_pickle_free(name):
  folder = run_dir.reference_root() / name
  assert (folder / run_dir.VARIABLES_FILE).stat().st_size <= 25 * 2**20
  for f in ("config.json", "MODEL_CARD.md", reference.CARD_FILE):
    assert (folder / f).is_file(), f"{name}: {f} missing"
  model = reference.load(name)  # np.load(..., allow_pickle=False) throughout
  config = importlib.import_module(f"configs.reference_{name}").get_config()
  assert model.config["model"] == config.model and model.config["head"] == config.head
  expected = builders.build_model(config, 313 if config.head == "classification" else 2)
  shapes = jax.eval_shape(lambda: expected.init(jax.random.key(0), np.zeros((1, 64, 64, 1)), train=False))
  run_dir.check_same_structure(model.variables, shapes, name)


@pytest.mark.parametrize("name", sorted(run_dir.REFERENCE_MODELS))
def test_shipped_model_matches_its_card_on_kodak(name, shared_data):
  """Metrics of the released weights on the card's Kodak photos, as colorize computes them, within 0.05."""
  card = reference.load(name).card
  check = card["release_check"]
  run = Colorizer.reference(name)
  photos = [np.asarray(Image.open(shared_data / "eval" / "kodak24" / f).convert("RGB")) for f in check["photos"]]
  got = reference.release_metrics(run, photos)
  for key in ("psnr", "auc"):
    assert abs(got[key] - check[key]) <= 0.05, f"{name}: {key} {got[key]:.4f}, card says {check[key]:.4f}"
  if run.takes_hints:  # and with hints read off the photos, given as `colorize --hints` gives them
    hinted, check = reference.release_metrics(run, photos, hints=check["hints"]), check["with_hints"]
    for key in ("psnr", "auc"):
      assert abs(hinted[key] - check[key]) <= 0.05, f"{name} with hints: {key} {hinted[key]:.4f}, card: {check[key]:.4f}"


def test_default_and_unknown_names():
  assert reference.DEFAULT in run_dir.REFERENCE_MODELS
  with pytest.raises(ValueError, match="choose one of: accurate, vivid"):
    reference.load("nope")


# --- export / load round trip on a tiny run -------------------------------------------------------------------

@pytest.fixture()
def exported(tiny_run_dir, tmp_path, monkeypatch):
  root = tmp_path / "reference_models"
  folder = reference.export(str(tiny_run_dir), "vivid", out_root=root, card={"note": "test"})
  monkeypatch.setattr(run_dir, "reference_root", lambda: root)
  return folder


def test_export_round_trip_loads_the_same_variables(tiny_run_dir, exported):
  variables, step = run_dir.restore_variables(tiny_run_dir)
  loaded = reference.load("vivid")
  assert loaded.step == step and loaded.card["note"] == "test"
  assert loaded.config["data_dir"] == "~/tensorflow_datasets"  # not the exporting machine's TFDS folder
  want = jax.tree.leaves(variables)
  got = jax.tree.leaves(loaded.variables)
  assert len(want) == len(got) and all(np.array_equal(a, b) for a, b in zip(want, got))
  with pytest.raises(FileExistsError, match="overwrite"):
    reference.export(str(tiny_run_dir), "vivid", out_root=exported.parent)


def test_float16_export_halves_the_file_and_loads_as_float32(tiny_run_dir, tmp_path):
  full = reference.export(str(tiny_run_dir), "vivid", out_root=tmp_path / "f32")
  half = reference.export(str(tiny_run_dir), "vivid", out_root=tmp_path / "f16", dtype="float16")
  size = lambda folder: os.path.getsize(folder / run_dir.VARIABLES_FILE)
  assert size(half) < 0.7 * size(full)  # about half, plus the per-array headers of this tiny model
  variables, _ = run_dir.restore_variables(tiny_run_dir)
  loaded = run_dir.read_variables(half)
  for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(loaded)):
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=2**-11, atol=2**-24)  # float16 keeps 11 significant bits


def test_colorize_without_workdir_uses_the_default_model(exported, shared_data, tmp_path, monkeypatch):
  monkeypatch.setattr(reference, "DEFAULT", "vivid")
  photo = sorted((shared_data / "eval" / "kodak24").glob("*.png"))[0]
  out = tmp_path / "out"
  assert colorize.main([str(photo), f"--out={out}"]) == 0
  assert Image.open(out / f"{photo.stem}.png").size == Image.open(photo).size
  assert colorize.main([str(photo), f"--out={out}", "--model=vivid", "--overwrite"]) == 0
  with pytest.raises(SystemExit):
    colorize.main([str(photo), f"--out={out}", "--model=vivid", "--workdir=x"])


def test_evaluate_a_reference_model_at_another_size(exported, shared_data, tmp_path):
  rows = evaluate.evaluate_run("vivid", "kodak24", data_dir=str(tmp_path / "tfds"), size=64, model_size=32,
                               batch_size=4, max_batches=1)
  assert rows["model"]["num_examples"] == 4 and "grayscale (ab = 0)" in rows
  out = tmp_path / "eval"
  assert evaluate.main(["--model=vivid", "--dataset=kodak24", f"--data_dir={tmp_path / 'tfds'}", "--size=64",
                        "--max_batches=1", "--batch_size=4", f"--out={out}"]) == 0
  assert json.loads((out / "kodak24.json").read_text())["model"]["num_examples"] == 4


# --- fine-tuning from a shipped model ------------------------------------------------------------------------

def _tiny_config(tiny_run_dir):
  return ml_collections.ConfigDict(run_dir.read_config(tiny_run_dir))


def test_init_from_starts_from_the_given_weights(exported, tiny_run_dir, tmp_path):
  config = _tiny_config(tiny_run_dir)
  config.init_from = "vivid"
  builders.check_config(config)
  trainer = train.Trainer(config, str(tmp_path / "run"))
  state = trainer.init_from(trainer.init_state())
  want = reference.load("vivid").variables
  for a, b in zip(jax.tree.leaves(want["params"]), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(a, np.asarray(b))
  np.testing.assert_array_equal(trainer.prior, reference.load("vivid").prior)  # the shipped rebalancing


def test_init_from_a_different_model_fails_naming_the_paths(exported, tiny_run_dir, tmp_path):
  config = _tiny_config(tiny_run_dir)
  config.init_from = "vivid"
  config.model_kwargs.features = tuple(2 * f for f in config.model_kwargs.features)
  trainer = train.Trainer(config, str(tmp_path / "run"))
  with pytest.raises(ValueError, match=r"does not fit this config's model: .*shape \(16,\) in vivid, \(32,\) here"):
    trainer.init_from(trainer.init_state())


def test_init_from_unknown_fails_before_compilation(tiny_run_dir, tmp_path):
  config = _tiny_config(tiny_run_dir)
  config.init_from = str(tmp_path / "nowhere")
  with pytest.raises(ValueError, match="neither a reference model \\(accurate, vivid, guided\\) nor a run directory"):
    builders.check_config(config)


def test_init_from_a_regression_body_keeps_the_excluded_head_fresh(tiny_run_dir, tmp_path):
  """A classifier started from a regression run: every variable but the head's projection comes from the run."""
  from flax import traverse_util
  reg = _tiny_config(tiny_run_dir)
  reg.head, reg.loss, reg.rebalance = "regression", "l1", False
  write_untrained_run(reg, tmp_path / "reg")
  config = _tiny_config(tiny_run_dir)
  config.init_from = str(tmp_path / "reg")
  config.rebalance = False  # no prior to estimate: this test is about the weights
  trainer = train.Trainer(config, str(tmp_path / "a"))
  with pytest.raises(ValueError, match=r"params/head/proj/kernel: shape \(1, 1, 8, 2\) in .*\(1, 1, 8, 313\) here"):
    trainer.init_from(trainer.init_state())
  config.init_from_exclude = ("params/head/nothing",)
  builders.check_config(config)
  trainer = train.Trainer(config, str(tmp_path / "b"))
  with pytest.raises(ValueError, match="params/head/nothing names no variable"):
    trainer.init_from(trainer.init_state())
  config.init_from_exclude = ("params/head",)
  trainer = train.Trainer(config, str(tmp_path / "c"))
  fresh = trainer.init_state()
  state = trainer.init_from(fresh)
  source = traverse_util.flatten_dict(run_dir.restore_variables(tmp_path / "reg")[0]["params"], sep="/")
  got = traverse_util.flatten_dict(jax.device_get(state.params), sep="/")
  init = traverse_util.flatten_dict(jax.device_get(fresh.params), sep="/")
  assert {k for k in got if k.startswith("head/")} == {"head/proj/kernel", "head/proj/bias"}
  for k, v in got.items():
    np.testing.assert_array_equal(v, init[k] if k.startswith("head/") else source[k], err_msg=k)
  with pytest.raises(ValueError, match="init_from_exclude=.*needs config.init_from"):
    builders.check_config(ml_collections.ConfigDict({**config.to_dict(), "init_from": ""}))
