"""Every system config under configs/: the full-size config passes `builders.check_config` (nothing is compiled)
and its "local" variant trains 2 steps on the embedded scikit-image photos, writing a checkpoint and samples.

Also: invalid configs fail in `check_config`, naming the field and the valid choices, before any compilation.
"""
from __future__ import annotations

import dataclasses
import importlib
import pathlib
import sys
import time

import jax
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the configs package lives at the repository root
  sys.path.insert(0, str(REPO))

from jaxcolor import builders, checkpoint, models  # noqa: E402

CONFIG_NAMES = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.stem not in ("default", "__init__"))
# Pretrained-encoder models: their local runs take 40-100 s on a busy 2-core CPU (compiling the encoder graphs
# over 8 host devices dominates). Marked slow: CI's `-m "not slow"` leaves them out.
HEAVY = {"hybrid_unet", "koalarization", "resnet50_unet_reg", "resnet50_unet_cls", "vgg16_ae", "reference_accurate",
         "reference_vivid", "reference_guided", "reference_guided_192"}  # the reference recipes: efficientnet_unet's network (not slow) with their objectives
# Loop settings of a 2-step smoke run; every local variant has them, except unet_cls's, a 40-step demo run.
TWO_STEPS = dict(total_steps=2, eval_every=0, eval_batches=1, log_every=1, checkpoint_every=2, prior_batches=2)


def load(name: str, variant: str = ""):
  return importlib.import_module(f"configs.{name}").get_config(variant)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
  """One TFDS data_dir per test session (so per xdist worker): skimage_photos is built into it once."""
  return str(tmp_path_factory.mktemp("tfds"))


def test_every_model_has_a_config():
  used = {load(name).model for name in CONFIG_NAMES}
  assert used == set(models.MODELS), f"models without a config: {sorted(set(models.MODELS) - used)}"


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_full_config_passes_check(name):
  config = load(name)
  from jaxcolor import run_dir
  if config.init_from and config.init_from not in run_dir.REFERENCE_MODELS:  # a later stage of a recipe
    with pytest.raises(ValueError, match="neither a reference model"):  # before the earlier stage ran
      builders.check_config(config)
    config.init_from = "guided" if config.get("hints", {}).get("enabled") else "accurate"  # the same network
  builders.check_config(config)
  doc = importlib.import_module(f"configs.{name}").__doc__
  assert f"python -m jaxcolor.main --config=configs/{name}.py" in doc.split("\n\n")[1], "docstring: run command"
  assert f"--config=configs/{name}.py:local" in doc
  # No recipe names a local file by default; weights that install with the package's extra may be the default.
  assert set(config.pretrained.to_dict().values()) <= {"", "installed"}, "pretrained: no local paths by default"
  encoders = getattr(models.MODELS[config.model], "encoder_names", ())
  assert set(config.pretrained.to_dict()) == set(encoders), "config.pretrained must list the model's encoders"
  with pytest.raises(ValueError, match="unknown variant"):
    load(name, "nope")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
                                  for n in CONFIG_NAMES])
def test_local_variant_trains(name, data_dir, tmp_path):
  config = load(name, "local")
  assert config.dataset == "skimage_photos" and config.batch_size == 8 and config.image_size <= 64
  assert not any(config.pretrained.to_dict().values()), "local runs use random init"
  if name != "unet_cls":
    assert {k: config[k] for k in TWO_STEPS} == TWO_STEPS
  config.update(TWO_STEPS)
  config.data_dir = data_dir
  t = time.time()
  from jaxcolor import train
  state = train.train_and_evaluate(config, str(tmp_path))
  print(f"{name}: local run {time.time() - t:.1f}s")
  assert int(state.step) == 2
  steps = sorted(int(p.name) for p in (tmp_path / checkpoint.CHECKPOINT_DIR).iterdir() if p.name.isdigit())
  assert steps and steps[-1] == 2, f"checkpoints: {steps}"
  assert (tmp_path / "samples" / "step_00000002.png").is_file()
  assert (tmp_path / "config.json").is_file()


def _invalid(**overrides):
  config = load("unet_reg", "local")
  for key, value in overrides.items():
    if key == "model_kwargs":
      config.model_kwargs.update(value)
    else:
      config[key] = value
  return config


@pytest.mark.parametrize("overrides, match", [
    (dict(model="unet3000"), r"config\.model='unet3000'.*autoencoder, cnn_baseline, eccv16"),
    (dict(loss="cross_entropy"), r"config\.loss='cross_entropy' needs head 'classification'.*losses for "
                                 r"regression: adversarial, colorfulness, huber, l1, l2, perceptual"),
    (dict(head="classification"), r"config\.loss='l2' needs head 'regression'.*losses for classification: "
                                  r"adversarial, colorfulness, cross_entropy, l1_decoded, l2_decoded, perceptual"),
    (dict(batch_size=12), r"batch_size 12 is not divisible by the 8 devices"),
    (dict(model_kwargs=dict(widht=2)), r"model_kwargs \['features', 'widht'\] do not fit model 'unet'"),
    (dict(optimizer="lamb"), r"unknown config\.optimizer 'lamb'; choices: \['adam', 'adamw', 'sgd'\]"),
], ids=["model", "loss_for_regression", "loss_for_classification", "batch", "model_kwargs", "optimizer"])
def test_invalid_config_fails_before_compiling(overrides, match, monkeypatch):
  assert jax.device_count() == 8  # tests/conftest.py
  config = _invalid(**overrides)

  def no_compile(*args, **kwargs):
    raise AssertionError("check_config compiled something")

  monkeypatch.setattr(jax, "jit", no_compile)
  monkeypatch.setattr(jax, "pmap", no_compile)
  with pytest.raises(ValueError, match=match):
    builders.check_config(config)


def test_hints_need_a_model_that_takes_them_and_fitting_settings():
  config = load("unet_reg", "local")
  config.hints.enabled = True
  with pytest.raises(ValueError, match=r"hints.enabled needs a model that takes color hints: siggraph17, or "
                                       r"efficientnet_unet / resnet50_unet with config.model_kwargs.guided=True"):
    builders.check_config(config)
  config = load("siggraph17", "local")
  for field, value, match in (("location", "corner", "choose one of: gaussian, uniform"), ("p", 0.0, r"\(0, 1\]"),
                              ("patch_sizes", (1, 40), "up to 40 px do not fit 32 px images")):
    bad = config.copy_and_resolve_references()
    bad.hints[field] = value
    with pytest.raises(ValueError, match=match):
      builders.check_config(bad)


def test_output_stride_is_checked_before_compiling(monkeypatch):
  config = load("eccv16", "local")
  config.image_size = 34
  monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("check_config compiled something"))
  with pytest.raises(ValueError, match="image size 34 is not a multiple of eccv16's output stride 4"):
    builders.check_config(config)


def test_target_space_and_pretrained_names_are_checked():
  from configs import autoencoder_lab, vgg16_ae
  from jaxcolor import builders
  c = autoencoder_lab.get_config()
  c.target_space = "rgb"  # the model still predicts lab
  with pytest.raises(ValueError, match="model_kwargs.target"):
    builders.check_config(c)
  c = vgg16_ae.get_config()
  with c.unlocked():
    c.pretrained.resnet = "/nowhere.h5"
  with pytest.raises(ValueError, match="pretrained encoders: vgg"):
    builders.check_config(c)


def test_frozen_encoder_bn_without_pretrained_weights_warns(caplog, tmp_path):
  """A random encoder whose BatchNorm keeps its initial statistics trains unnormalized: check_config says so."""
  from configs import hybrid_unet
  c = hybrid_unet.get_config("local")
  with caplog.at_level("WARNING"):
    builders.check_config(c)
  assert "finetune_encoder_bn=True" in caplog.text
  caplog.clear()
  c.model_kwargs.finetune_encoder_bn = True
  with caplog.at_level("WARNING"):
    builders.check_config(c)
  assert "finetune_encoder_bn" not in caplog.text
  c.model_kwargs.finetune_encoder_bn = False
  (tmp_path / "vgg16_notop.h5").write_bytes(b"")  # check_config checks the file exists (load reads it)
  c.pretrained.vgg = str(tmp_path / "vgg16_notop.h5")  # pretrained: frozen statistics are the point
  with caplog.at_level("WARNING"):
    builders.check_config(c)
  assert "finetune_encoder_bn" not in caplog.text


def test_the_objective_not_the_model_decides_the_fused_head():
  """One model for training and inference; the train step hands the head to the loss when every term takes
  it: cross-entropy alone yes, with a decoded-color term or for regression no."""
  cls, reg = load("unet_cls", "local"), load("unet_reg", "local")
  assert builders.build_loss(cls).head_input and not builders.build_loss(reg).head_input
  cls.losses.cross_entropy, cls.losses.l1_decoded = 1.0, 0.1
  assert not builders.build_loss(cls).head_input
  assert "defer_classifier" not in {f.name for f in dataclasses.fields(builders.build_model(cls, 313))}

def _fields_read_by_the_package() -> dict[str, set[str]]:
  """Config field -> the package files reading it: `config.X` / `cfg.X`, `config.get("X")`, and the pipeline's
  accessor `_field(config, "X")`."""
  import ast
  methods = {"get", "to_dict", "items", "keys", "values", "unlock", "lock", "copy_and_resolve_references",
             "update", "to_json", "to_json_best_effort"}
  reads: dict[str, set[str]] = {}
  for f in (REPO / "jaxcolor").rglob("*.py"):
    for node in ast.walk(ast.parse(f.read_text())):
      name = None
      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("config", "cfg"):
        name = node.attr if node.attr not in methods else None
      elif isinstance(node, ast.Call) and node.args:
        fn, args = node.func, node.args
        if (isinstance(fn, ast.Attribute) and fn.attr == "get" and isinstance(fn.value, ast.Name)
            and fn.value.id in ("config", "cfg") and isinstance(args[0], ast.Constant)):
          name = args[0].value
        elif isinstance(fn, ast.Name) and fn.id == "_field" and len(args) > 1 and isinstance(args[1], ast.Constant):
          name = args[1].value
      if name:
        reads.setdefault(name, set()).add(str(f.relative_to(REPO)))
  return reads


def test_every_field_the_code_reads_is_in_the_defaults():
  """So `--config.X=...` works on every recipe for any X the code reads (recipes start from jaxcolor/defaults.py)."""
  from jaxcolor import defaults
  reads = _fields_read_by_the_package()
  assert {"momentum", "freeze_steps", "min_side", "shuffle_buffer", "image_size"} <= set(reads)  # the walk sees them
  default = defaults.get_config()
  assert {k: sorted(v) for k, v in reads.items() if k not in default} == {}
  for name in CONFIG_NAMES:
    recipe = load(name)
    assert not [k for k in reads if k not in recipe], name


def test_no_fallback_defaults_outside_the_defaults():
  """One source of truth: the package reads config fields without defaults of its own: no `config.get("X", v)`
  with a value v other than None, no pipeline accessor `_field(config, "X", <constant>)`, no optim.DEFAULTS."""
  import ast
  from jaxcolor import optim
  assert not hasattr(optim, "DEFAULTS")
  fallbacks = []
  for f in (REPO / "jaxcolor").rglob("*.py"):
    for node in ast.walk(ast.parse(f.read_text())):
      if not (isinstance(node, ast.Call) and len(node.args) > 1):
        continue
      fn, args = node.func, node.args
      if isinstance(fn, ast.Attribute) and fn.attr == "get" and isinstance(fn.value, ast.Name) and fn.value.id in (
          "config", "cfg"):
        key, default = args[0], args[1]
      elif isinstance(fn, ast.Name) and fn.id == "_field" and len(args) > 2:
        key, default = args[1], args[2]
      else:
        continue
      if isinstance(key, ast.Constant) and (isinstance(default, (ast.Tuple, ast.List, ast.Dict)) or (
          isinstance(default, ast.Constant) and default.value is not None)):
        fallbacks.append(f"{f.relative_to(REPO)}:{node.lineno} {key.value}")
  assert fallbacks == []
