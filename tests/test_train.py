"""`train.train_and_evaluate` end to end on tiny configs: the guarantees of the training loop.

Resume after a crash is exact, SIGTERM saves and exits 0, a NaN/Inf loss never reaches disk, a corrupt
newest checkpoint falls back to the previous one, jit and pmap agree, early stopping survives a resume, the
run's artifacts are written and guarded against mixing runs, and runs from earlier configs resume (the
discriminator's state: test_train_loss_state.py; 2 processes: test_multihost.py). Runs use the embedded scikit-image photos (7 train / 2 eval) at 16 px, a (8, 16)
U-Net and batch 8 on the 8 host CPU devices of conftest.
"""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import checkpoint, run_dir, train
from train_support import (REPO, Crash, assert_trees_close, assert_trees_equal, cache_env, compilation_cache,  # noqa: F401
                           crash_after_step_5, data_dir, hook_steps, no_eval, restore, sigterm_after, tiny_config)


# -- 1. kill and resume --------------------------------------------------------------------------------


def test_crash_and_resume_gives_the_uninterrupted_params(data_dir, tmp_path, monkeypatch, no_eval):
  """A run killed after step 5 (last checkpoint: step 3) and resumed ends with exactly the parameters,
  BatchNorm statistics and Adam state of an uninterrupted 6-step run: the data stream continues at the
  step (input_pipeline skips the consumed examples) and the step RNG is folded with the step."""
  cfg = tiny_config(data_dir, optimizer="adam", learning_rate=1e-3)
  ref = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "ref"))

  with monkeypatch.context() as m:
    hook_steps(m, crash_after_step_5)
    with pytest.raises(Crash):
      train.train_and_evaluate(cfg, tmp_path / "run")
  assert checkpoint.Checkpointer(tmp_path / "run", read_only=True).all_steps() == [3]

  resumed = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "run"))
  assert int(resumed.step) == 6
  assert_trees_equal(resumed, ref)
  # The stream really moves on: a resumed run that re-read the first batches would differ.
  assert not np.array_equal(jax.tree.leaves(ref.params)[0], jax.tree.leaves(restore(tmp_path / "run", 3)[0]
                                                                                ["params"])[0])


def test_crash_and_resume_with_hints_gives_the_uninterrupted_params(data_dir, tmp_path, monkeypatch, no_eval):
  """Hints simulated in the step (jaxcolor.hints) draw from the step-folded key: resume stays exact, and the
  hints do reach the model (the run differs from one without them)."""
  import ml_collections
  cfg = tiny_config(data_dir, model="siggraph17")
  cfg.model_kwargs = ml_collections.ConfigDict(dict(width=1 / 16))
  cfg.hints.enabled, cfg.hints.patch_sizes = True, (1, 2, 3)
  ref = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "ref"))
  with monkeypatch.context() as m:
    hook_steps(m, crash_after_step_5)
    with pytest.raises(Crash):
      train.train_and_evaluate(cfg, tmp_path / "run")
  assert_trees_equal(jax.device_get(train.train_and_evaluate(cfg, tmp_path / "run")), ref)
  cfg.hints.enabled = False
  without = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "without"))
  assert not np.array_equal(without.params["conv1_1"]["kernel"], ref.params["conv1_1"]["kernel"])
  # Under pmap each device draws hints for its own shard (the key folded with the device index).
  cfg.hints.enabled, cfg.parallelism, cfg.total_steps = True, "pmap", 2
  pmapped = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "pmap"))
  assert int(pmapped.step[0] if pmapped.step.ndim else pmapped.step) == 2
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(pmapped.params))


# -- 2. SIGTERM ----------------------------------------------------------------------------------------


def _wait_for(path: pathlib.Path, pattern: str, proc, timeout: float = 120.0) -> re.Match:
  deadline = time.time() + timeout
  while time.time() < deadline:
    text = path.read_text(errors="replace") if path.exists() else ""
    if m := re.search(pattern, text):
      return m
    if proc.poll() is not None:
      raise AssertionError(f"process exited ({proc.returncode}) before {pattern!r}:\n{text[-3000:]}")
    time.sleep(0.2)
  proc.kill()
  raise AssertionError(f"timed out waiting for {pattern!r}:\n{path.read_text(errors='replace')[-3000:]}")


def _run_main_until_sigterm(workdir, data_dir, cache_dir, log: pathlib.Path, after: str) -> str:
  """Runs jaxcolor.main (configs/unet_cls.py:local), SIGTERMs it once `after` is logged; returns its log."""
  args = [sys.executable, "-m", "jaxcolor.main", "--config=configs/unet_cls.py:local", f"--workdir={workdir}",
          f"--config.data_dir={data_dir}", "--config.log_every=1", "--config.total_steps=500",
          "--config.prior_batches=2"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu",
             TF_CPP_MIN_LOG_LEVEL="2", **cache_env(cache_dir))
  with open(log, "w") as f:
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
  try:
    _wait_for(log, after, proc)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  text = log.read_text(errors="replace")
  assert rc == 0, f"exit status {rc} after SIGTERM:\n{text[-3000:]}"
  return text


@pytest.mark.slow
def test_sigterm_saves_at_the_current_step_and_exits_cleanly(data_dir, tmp_path, compilation_cache):
  wd = tmp_path / "wd"
  text = _run_main_until_sigterm(wd, data_dir, compilation_cache, tmp_path / "log1.txt", r"step 2/500 ")
  stopped = int(re.search(r"stopping at step (\d+) \(preemption\)", text).group(1))
  assert 2 <= stopped < 500
  with checkpoint.Checkpointer(wd, read_only=True) as ck:
    assert ck.latest_step() == stopped  # not the periodic step 20 / last step 500: the step it stopped at

  text = _run_main_until_sigterm(wd, data_dir, compilation_cache, tmp_path / "log2.txt",
                                rf"step {stopped + 1}/500 ")
  assert f"resumed from step {stopped} " in text
  assert not re.search(rf"step {stopped}/500 ", text) and not re.search(r"step 1/500 ", text)
  again = int(re.search(r"stopping at step (\d+) \(preemption\)", text).group(1))
  with checkpoint.Checkpointer(wd, read_only=True) as ck:
    assert ck.latest_step() == again > stopped


# -- 3. NaN / Inf ---------------------------------------------------------------------------------------


def test_nan_loss_stops_before_saving_a_bad_state(data_dir, tmp_path, monkeypatch, no_eval):
  """From step 4 on the step returns NaN parameters and loss; with checkpoint_every=2 and log_every=10 the
  first check is the save at step 4, which must raise instead of writing the NaN state."""
  def poison(step, state, metrics):
    if step >= 4:
      state = state.replace(params=jax.tree.map(lambda x: x * jnp.nan, state.params))
      metrics = dict(metrics, loss=metrics["loss"] * jnp.nan, finite=jnp.zeros_like(metrics["finite"]))
    return state, metrics
  hook_steps(monkeypatch, poison)
  cfg = tiny_config(data_dir, checkpoint_every=2, log_every=10)
  with pytest.raises(train.NonFiniteLossError, match=r"step 4\b.*from step 2\b"):
    train.train_and_evaluate(cfg, tmp_path / "wd")
  state, _, step = restore(tmp_path / "wd")
  assert step == 2 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))


def test_huge_learning_rate_raises_and_keeps_a_finite_checkpoint(data_dir, tmp_path, no_eval):
  """Real divergence: SGD at lr 1e36, a checkpoint every step; step 1's update stays finite (huge), step 2's
  loss overflows. (Classification: a regression head, which starts at zero and ends in a tanh, saturates to a
  bounded loss instead of overflowing.)"""
  cfg = tiny_config(data_dir, optimizer="sgd", momentum=0.0, learning_rate=1e36, checkpoint_every=1,
                head="classification", loss="cross_entropy")
  with pytest.raises(train.NonFiniteLossError,
                     match=r"loss became NaN or Inf at or before step 2\b.*from step 1\b"):
    train.train_and_evaluate(cfg, tmp_path / "wd")
  state, _, step = restore(tmp_path / "wd")
  assert step == 1 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))


def test_non_finite_params_with_a_finite_loss_are_not_saved(data_dir, tmp_path, monkeypatch, no_eval):
  """Step k's loss is computed before step k's update, so an update that overflows shows in the loss only
  one step later; the save at step k must check the parameters themselves (here: Inf from step 2 on)."""
  def overflow(step, state, metrics):
    if step >= 2:
      state = state.replace(params=jax.tree.map(lambda x: x * jnp.inf, state.params))
    return state, metrics
  hook_steps(monkeypatch, overflow)
  with pytest.raises(train.NonFiniteLossError, match=r"parameters became NaN or Inf at or before step 2\b.*"
                                                     r"from step 1\b"):
    train.train_and_evaluate(tiny_config(data_dir, checkpoint_every=1), tmp_path / "wd")
  state, _, step = restore(tmp_path / "wd")
  assert step == 1 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))


# -- 4. corrupt newest checkpoint ------------------------------------------------------------------------


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(data_dir, tmp_path, no_eval, caplog):
  cfg = tiny_config(data_dir, total_steps=4, checkpoint_every=2)
  wd = tmp_path / "wd"
  ref = jax.device_get(train.train_and_evaluate(cfg, wd))
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2, 4]
  for f in (wd / "checkpoints" / "4" / "state").rglob("*"):
    if f.is_file():
      os.truncate(f, 0)

  with caplog.at_level("WARNING"):
    out = jax.device_get(train.train_and_evaluate(cfg, wd))
  assert re.search(r"checkpoint step 4 .* failed to restore", caplog.text)
  assert list((wd / checkpoint.CORRUPT_DIR).glob("4-*"))
  assert int(out.step) == 4 and checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2, 4]
  assert_trees_equal(out, ref)  # steps 3 and 4 were trained again from step 2, identically


# -- 5. jit vs pmap ------------------------------------------------------------------------------------


def test_jit_and_pmap_runs_agree(data_dir, tmp_path, no_eval):
  assert jax.device_count() == 8
  out = {}
  for p in ("jit", "pmap"):
    cfg = tiny_config(data_dir, parallelism=p, total_steps=3, optimizer="sgd", learning_rate=0.1)
    out[p] = jax.device_get(train.train_and_evaluate(cfg, tmp_path / p))
  assert int(out["pmap"].step) == int(out["jit"].step) == 3
  assert_trees_close(out["pmap"].params, out["jit"].params)
  assert_trees_close(out["pmap"].batch_stats, out["jit"].batch_stats)
  # pmap's checkpoint holds the unreplicated state (no device axis), like jit's.
  a, b = restore(tmp_path / "pmap")[0], restore(tmp_path / "jit")[0]
  assert jax.tree.map(np.shape, a) == jax.tree.map(np.shape, b)


# -- 6. early stopping ---------------------------------------------------------------------------------


def test_early_stopping_stops_saves_and_keeps_its_state_across_resume(data_dir, tmp_path, monkeypatch):
  """The metric never improves: patience 2 allows evals 2 and 3 without improvement, so the run stops
  at step 3 of 6. Interrupted at step 2 (one eval since the best), the resumed run must still stop at
  step 3; without the restored best / evals_since_best it would run to step 5."""
  evals = []

  def evaluate(self, state, step, writer, names=None):
    evals.append(step)
    return {"color_metrics/ab_mae": 1.0}
  monkeypatch.setattr(train.Trainer, "evaluate", evaluate)
  cfg = tiny_config(data_dir, eval_every=1, early_stopping_metric="color_metrics/ab_mae",
                early_stopping_patience=2, checkpoint_every=100)

  out = train.train_and_evaluate(cfg, tmp_path / "straight")
  assert int(out.step) == 3 and evals == [1, 2, 3]
  _, meta, step = restore(tmp_path / "straight")
  assert step == 3 and meta["best"] == 1.0 and meta["evals_since_best"] == 2 and meta["early_stopped_at"] == 3

  evals.clear()
  with monkeypatch.context() as m:
    sigterm_after(m, 2)
    train.train_and_evaluate(cfg, tmp_path / "resumed")
  _, meta, step = restore(tmp_path / "resumed")
  assert step == 2 and meta["best"] == 1.0 and meta["evals_since_best"] == 1
  out = train.train_and_evaluate(cfg, tmp_path / "resumed")
  assert int(out.step) == 3 and evals == [1, 2, 3]
  # A finished (early-stopped) run launched again does not train on.
  out = train.train_and_evaluate(cfg, tmp_path / "resumed")
  assert int(out.step) == 3 and evals == [1, 2, 3]
  assert checkpoint.Checkpointer(tmp_path / "resumed", read_only=True).latest_step() == 3


def test_early_stopping_metric_must_exist(data_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(train.Trainer, "evaluate", lambda self, state, step, writer, names=None: {"a/b": 1.0})
  cfg = tiny_config(data_dir, eval_every=1, early_stopping_metric="a/nope", total_steps=2)
  with pytest.raises(ValueError, match="a/nope.*a/b"):
    train.train_and_evaluate(cfg, tmp_path / "wd")


def test_evaluations_run_each_at_its_own_cadence(data_dir, tmp_path, monkeypatch):
  """config.evals: the run's split every 2 steps, a second evaluation (the same photos at 32 px, one batch)
  only at the end; each under its own name."""
  from jaxcolor.evaluation import evaluators
  cfg = tiny_config(data_dir, total_steps=4, eval_every=2, checkpoint_every=100)
  cfg.evals.at_end = evaluators.eval_fields(size=32, every=0, batches=1)
  seen = []
  evaluate = train.Trainer.evaluate

  def spy(self, state, step, writer, names=None):
    out = evaluate(self, state, step, writer, names)
    seen.append((step, sorted({k.split("/")[0] for k in out}), out))
    return out
  monkeypatch.setattr(train.Trainer, "evaluate", spy)
  train.train_and_evaluate(cfg, tmp_path / "wd")
  assert [(s, n) for s, n, _ in seen] == [(2, ["color_metrics"]), (4, ["at_end", "color_metrics"])]
  last = seen[-1][2]
  assert last["at_end/num_examples"] == last["color_metrics/num_examples"] > 0  # one batch holds the split
  assert np.isfinite(last["at_end/psnr"]) and last["at_end/psnr"] != last["color_metrics/psnr"]  # 32 vs 16 px


# -- 7. run artifacts ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_writes_artifacts_and_refuses_another_config(data_dir, tmp_path):
  cfg = tiny_config(data_dir, head="classification", loss="cross_entropy", total_steps=2, checkpoint_every=2,
                eval_every=0)
  wd = tmp_path / "wd"
  train.train_and_evaluate(cfg, wd)
  assert json.loads((wd / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict()))
  assert list((wd / "tensorboard").glob("events.out.tfevents.*"))
  assert (wd / "samples" / "step_00000002.png").stat().st_size > 0
  art = run_dir.read_artifacts(wd)
  assert art.bins.num_bins == 313 and art.prior.shape == (313,) and abs(art.prior.sum() - 1) < 1e-4
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2]

  for change in (dict(learning_rate=0.5), dict(bin_step=20.0), dict(head="regression", loss="l2")):
    other = tiny_config(data_dir, **{**dict(head="classification", loss="cross_entropy", total_steps=2,
                                        checkpoint_every=2), **change})
    with pytest.raises(ValueError, match=r"different config.*" + re.escape(sorted(change)[0])):
      train.train_and_evaluate(other, wd)
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2]
  assert json.loads((wd / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict()))

  longer = tiny_config(data_dir, head="classification", loss="cross_entropy", total_steps=3, checkpoint_every=2,
                   eval_every=0)  # loop fields may change on resume: train the same run one step longer
  assert int(train.train_and_evaluate(longer, wd).step) == 3
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2, 3]
  assert json.loads((wd / "config.json").read_text())["total_steps"] == 3


def test_a_finished_run_says_so_and_compiles_nothing(data_dir, tmp_path, monkeypatch, no_eval):
  """Launched again after its last step, a run names its step and how to train longer, compiles no step and
  writes no TensorBoard file; the entry point's closing lines say where the outputs are. (A corrupt newest
  checkpoint is not taken for the end: test_corrupt_latest_checkpoint_falls_back_to_the_previous.)"""
  from jaxcolor import main as main_lib
  cfg = tiny_config(data_dir, total_steps=2, checkpoint_every=2)
  wd = tmp_path / "wd"
  train.train_and_evaluate(cfg, wd)
  events = sorted((wd / "tensorboard").glob("*"))
  said = []
  # absl's logging.info is patched for every caller (orbax logs dicts), so format only what a format string is
  monkeypatch.setattr(train.logging, "info",
                      lambda msg, *args, **kw: said.append(msg % args if args else str(msg)))
  monkeypatch.setattr(train.Trainer, "compile_steps", lambda self: pytest.fail("compiled a finished run"))
  assert int(train.train_and_evaluate(cfg, wd).step) == 2
  assert any(f"is complete: it trained to step 2 (config.total_steps=2)" in m and "--config.total_steps=N" in m
             for m in said), said
  assert sorted((wd / "tensorboard").glob("*")) == events
  lines = main_lib.where_outputs_are(wd)
  for part in (f"run folder: {wd}", f"{wd / 'checkpoints'}", f"{wd / 'samples'}", f"--logdir {wd / 'tensorboard'}",
               f"python -m jaxcolor.colorize PHOTOS --workdir={wd}"):
    assert part in lines


def test_sample_grid_shows_only_real_photos(data_dir, tmp_path):
  """The embedded validation split has 2 photos; an eval batch of 8 pads it with 6 blank ones, which the grid
  (L | prediction | truth per row) must not show."""
  from PIL import Image
  cfg = tiny_config(data_dir, total_steps=1, checkpoint_every=1, num_sample_images=4)
  train.train_and_evaluate(cfg, tmp_path / "wd")
  grid = Image.open(tmp_path / "wd" / "samples" / "step_00000001.png")
  assert grid.size == (3 * 16, 2 * 16)  # two rows of 16 px photos, not four


def test_workdir_from_before_added_fields_resumes(tmp_path):
  """A config.json that predates fields (top-level or nested) reads as holding their defaults: it matches a config
  holding those values, and only those; another value of such a field is a different run."""
  cfg = tiny_config(tmp_path / "tfds")
  old = cfg.to_dict()
  del old["weight_decay"], old["weight_decay_on"], old["augment"]["zoom"]
  run_dir.write_artifacts(tmp_path, old)
  assert "zoom" not in json.loads((tmp_path / run_dir.CONFIG_FILE).read_text())["augment"]
  assert run_dir.read_config(tmp_path)["augment"]["zoom"] == 0.0  # read as jaxcolor.defaults' value
  train._check_same_config(cfg, tmp_path)
  run_dir.write_artifacts(tmp_path, cfg.to_dict(), may_differ=train.RESUMABLE_KEYS)
  for change in (dict(weight_decay=0.01), dict(weight_decay_on="kernels"), dict(learning_rate=0.5)):
    with pytest.raises(ValueError, match="different config.*" + next(iter(change))):
      train._check_same_config(tiny_config(tmp_path / "tfds", **change), tmp_path)
  c = tiny_config(tmp_path / "tfds")
  c.augment.zoom = 0.1
  with pytest.raises(ValueError, match="different config.*augment.zoom"):
    train._check_same_config(c, tmp_path)


def first_vivid_recipe():
  """configs/reference_vivid.py as it was on 2026-12-01 (the first shipped `vivid`: a U-Net from scratch), today."""
  from jaxcolor import defaults
  c = defaults.get_config()
  c.model, c.model_kwargs.features = "unet", (16, 32, 64, 128, 256)
  c.head, c.loss, c.prior_batches = "classification", "cross_entropy", 200
  c.dataset, c.mix_datasets = "photos_256", (("tiny_imagenet_64", 0.5),)
  c.image_size, c.inference_size, c.batch_size = 64, 64, 32
  c.learning_rate, c.schedule, c.warmup_steps, c.total_steps = 2e-3, "warmup_cosine", 100, 4000
  c.eval_batches, c.log_every = 8, 100
  return c


def test_config_json_written_by_an_earlier_main_resumes(tmp_path):
  """The config.json of the first shipped `vivid` run (tests/data: as main wrote it on 2026-12-01, data_dir aside;
  before init_from_exclude, lr_multipliers, ... existed) resumes under today's code; a field it predates set to
  another value is a new run."""
  saved = json.loads((pathlib.Path(__file__).parent / "data" / "config_vivid_2026-12-01.json").read_text())
  assert "init_from_exclude" not in saved and "lr_multipliers" not in saved  # the file really predates the fields
  (tmp_path / "config.json").write_text(json.dumps(saved))
  train._check_same_config(first_vivid_recipe(), tmp_path)
  for field, value in (("init_from_exclude", ("params/head",)), ("lr_multipliers", (("down0", 0.5),))):
    c = first_vivid_recipe()
    c[field] = value
    with pytest.raises(ValueError, match=f"different config.*{field}"):
      train._check_same_config(c, tmp_path)