"""jaxcolor.run_dir: config.json / bins / prior written and read back without pickle, resume checks, the one
config.json reader, variables of checkpoints and shipped models, config.init_from, and a light import."""
import json
import subprocess
import sys

import numpy as np
import pytest

from jaxcolor import defaults, run_dir
from jaxcolor.colorspace import quantize

BINS = quantize.bins_from_centers(np.array([[-10, 0], [0, 0], [0, 10]], np.float32), 10.0, 110.0)


def _config(**changes) -> dict:
  """A full run config as JSON (jaxcolor.defaults) with `changes`."""
  return json.loads(json.dumps({**defaults.get_config().to_dict(), **changes}))


def test_artifacts_round_trip_without_pickle(tmp_path):
  config = _config(model="eccv16", model_kwargs={"widths": (64, 128)}, learning_rate=3e-4)
  prior = np.array([0.5, 0.25, 0.25], np.float32)
  run_dir.write_artifacts(tmp_path, config, BINS, prior)
  run_dir.write_artifacts(tmp_path, config, BINS, prior)  # resume with the same values: fine
  art = run_dir.read_artifacts(tmp_path)
  assert art.config == config and art.config["model_kwargs"] == {"widths": [64, 128]}
  assert json.loads((tmp_path / "config.json").read_text()) == art.config
  np.testing.assert_array_equal(art.bins.centers, BINS.centers)
  assert (art.bins.step, art.bins.extent) == (10.0, 110.0)
  np.testing.assert_array_equal(art.bins.grid_to_bin, BINS.grid_to_bin)
  np.testing.assert_array_equal(art.prior, prior)
  for name in ("bins.npz", "prior.npz"):
    with np.load(tmp_path / name, allow_pickle=False) as f:
      assert all(f[k].dtype != object for k in f.files)


def test_artifacts_without_bins(tmp_path):
  run_dir.write_artifacts(tmp_path, _config(model="unet", loss="l2"))
  art = run_dir.read_artifacts(tmp_path)
  assert art.config == _config(model="unet", loss="l2") and art.bins is None and art.prior is None
  with pytest.raises(FileNotFoundError, match="config.json"):
    run_dir.read_artifacts(tmp_path / "elsewhere")


def test_artifacts_refuse_a_different_config(tmp_path):
  run_dir.write_artifacts(tmp_path, _config(model_kwargs={"name": "eccv16", "depth": 8}, learning_rate=1e-3), BINS)
  with pytest.raises(ValueError, match=r"keys differ: learning_rate, model_kwargs\.depth, seed"):
    run_dir.write_artifacts(tmp_path, _config(model_kwargs={"name": "eccv16"}, learning_rate=2e-3, seed=1), BINS)
  with pytest.raises(ValueError, match="bins"):
    run_dir.write_artifacts(tmp_path, _config(model_kwargs={"name": "eccv16", "depth": 8}, learning_rate=1e-3))
  assert run_dir.read_config(tmp_path)["learning_rate"] == 1e-3  # untouched
  run_dir.write_artifacts(tmp_path, _config(model_kwargs={"name": "eccv16", "depth": 8}, learning_rate=2e-3), BINS,
                          may_differ=("learning_rate",))
  assert run_dir.read_config(tmp_path)["learning_rate"] == 2e-3  # a field that may differ is rewritten
  run_dir.write_artifacts(tmp_path, _config(learning_rate=3e-3), overwrite=True)
  art = run_dir.read_artifacts(tmp_path)
  assert art.config == _config(learning_rate=3e-3) and art.bins is None
  assert not (tmp_path / run_dir.BINS_FILE).exists()


def test_a_field_the_saved_config_lacks_reads_as_its_default(tmp_path):
  config = defaults.get_config()
  assert run_dir.config_differences(tmp_path, config) == []  # no config.json yet
  saved = config.to_dict()
  del saved["weight_decay"], saved["augment"]["zoom"]
  (tmp_path / run_dir.CONFIG_FILE).write_text(json.dumps(saved))
  assert run_dir.read_config(tmp_path) == json.loads(json.dumps(config.to_dict()))
  assert run_dir.config_differences(tmp_path, config) == []
  config.weight_decay, config.augment.zoom = config.weight_decay + 0.5, config.augment.zoom + 0.5
  assert run_dir.config_differences(tmp_path, config) == ["augment.zoom", "weight_decay"]


def test_a_config_json_from_before_losses_added_up_reads_as_the_same_objective(tmp_path):
  """Before, config.losses held 0.0 for every term off and any non-zero weight replaced config.loss: such a file
  is read translated (objective.upgrade_saved_config), and resumes under today's recipe that trains the same sum;
  an unset weight and 0.0 compare equal, a real change of weight does not."""
  from jaxcolor.losses import objective
  old = _config(loss="l1", losses={name: 0.0 for name in defaults.get_config().losses},
                loss_kwargs={"ignored": 1})
  old["losses"].update(cross_entropy=1.0, l1_decoded=0.3)  # vivid's recipe: l1 (config.loss) was dropped
  (tmp_path / run_dir.CONFIG_FILE).write_text(json.dumps(old))
  read = run_dir.read_config(tmp_path)
  assert [(n, w) for n, w, _ in objective.terms(read)] == [("cross_entropy", 1.0), ("l1_decoded", 0.3)]
  today = defaults.get_config()
  today.loss, today.losses.l1 = "l1", 0.0
  today.losses.cross_entropy, today.losses.l1_decoded = 1.0, 0.3
  assert run_dir.config_differences(tmp_path, today) == []
  today.losses.l1_decoded = 0.2
  assert run_dir.config_differences(tmp_path, today) == ["losses.l1_decoded"]
  today.losses.l1_decoded, today.losses.l1 = 0.3, None  # config.loss back in the sum: another experiment
  assert run_dir.config_differences(tmp_path, today) == ["losses.l1"]


def test_every_reader_of_config_json_goes_through_read_config(tmp_path, monkeypatch):
  """read_config is the single place an old config.json is translated: what it returns is what the artifacts,
  the resume diff and init_from see."""
  run_dir.write_artifacts(tmp_path, _config(learning_rate=1e-3))
  read = run_dir.read_config
  monkeypatch.setattr(run_dir, "read_config", lambda folder: {**read(folder), "learning_rate": 2e-3})
  assert run_dir.read_artifacts(tmp_path).config == _config(learning_rate=2e-3)
  assert run_dir.config_differences(tmp_path, _config(learning_rate=2e-3)) == []
  run_dir.write_artifacts(tmp_path, _config(learning_rate=2e-3))  # a resume that matches the translated config


def test_restore_variables_of_a_run(tiny_run_dir):
  variables, step = run_dir.restore_variables(tiny_run_dir)
  assert step == 1 and set(variables) == {"params", "batch_stats"} and variables["params"]
  with pytest.raises(FileNotFoundError):
    run_dir.restore_variables(tiny_run_dir, step=2)


def test_variables_file_round_trip_and_no_pickle(tmp_path):
  variables = {"params": {"conv": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}, "batch_stats": {}}
  run_dir.write_variables(tmp_path / "ok", variables)
  got = run_dir.read_variables(tmp_path / "ok")
  assert got["batch_stats"] == {}
  np.testing.assert_array_equal(got["params"]["conv"]["kernel"], variables["params"]["conv"]["kernel"])
  (tmp_path / "pickled").mkdir()
  np.savez(tmp_path / "pickled" / run_dir.VARIABLES_FILE, params=np.array([{"a": 1}], dtype=object))
  with pytest.raises(ValueError, match="not an .npz of arrays"):
    run_dir.read_variables(tmp_path / "pickled")
  run_dir.write_variables(tmp_path / "no_params", {"batch_stats": {"bn": {"mean": np.zeros(2)}}})
  with pytest.raises(ValueError, match="no 'params/...' arrays"):
    run_dir.read_variables(tmp_path / "no_params")


def test_reference_models_live_in_the_package():
  for name in run_dir.REFERENCE_MODELS:
    folder = run_dir.reference_folder(name)
    assert folder == run_dir.reference_root() / name and (folder / run_dir.CONFIG_FILE).is_file()
  with pytest.raises(ValueError, match="unknown reference model 'nope'; choose one of: accurate, vivid, guided"):
    run_dir.reference_folder("nope")


def test_reference_folder_names_a_missing_install(tmp_path, monkeypatch):
  monkeypatch.setattr(run_dir, "reference_root", lambda: tmp_path)
  with pytest.raises(FileNotFoundError, match="reference model 'vivid' is not installed"):
    run_dir.reference_folder("vivid")


def test_init_source_is_a_reference_model_or_a_run(tiny_run_dir, tmp_path):
  assert str(run_dir.init_source("accurate")) == str(run_dir.reference_root() / "accurate")
  assert str(run_dir.init_source(str(tiny_run_dir))) == str(tiny_run_dir)
  with pytest.raises(ValueError, match=r"neither a reference model \(accurate, vivid, guided\) nor a run directory"):
    run_dir.init_source(str(tmp_path))


def test_merge_init_variables_keeps_excluded_paths_fresh():
  fresh = {"params": {"body": {"k": np.zeros(2)}, "head": {"k": np.zeros(3)}}, "batch_stats": {}}
  loaded = {"params": {"body": {"k": np.ones(2)}, "head": {"k": np.ones(4)}}, "batch_stats": {}}
  with pytest.raises(ValueError, match=r"params/head/k: shape \(4,\) in src, \(3,\) here"):
    run_dir.merge_init_variables(loaded, fresh, "src")
  with pytest.raises(ValueError, match="params/tail names no variable"):
    run_dir.merge_init_variables(loaded, fresh, "src", exclude=("params/tail",))
  merged = run_dir.merge_init_variables(loaded, fresh, "src", exclude=("params/head",))
  assert merged["batch_stats"] == {}  # an empty collection stays in the result
  np.testing.assert_array_equal(merged["params"]["body"]["k"], np.ones(2))
  np.testing.assert_array_equal(merged["params"]["head"]["k"], np.zeros(3))


@pytest.mark.parametrize("module", ["jaxcolor.run_dir", "jaxcolor.checkpoint"])
def test_import_loads_no_models_losses_or_inference(module):
  """Reading a run folder or driving Orbax must not pull in the models, the losses or inference."""
  code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('jaxcolor')))"
  loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
  assert module in loaded
  heavy = [m for m in loaded if m.split(".")[:2] in (["jaxcolor", "models"], ["jaxcolor", "losses"],
                                                      ["jaxcolor", "inference"], ["jaxcolor", "defaults"])]
  assert not heavy, heavy
