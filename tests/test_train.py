"""`train.train_and_evaluate` end to end on tiny configs: the guarantees of the training loop.

Resume after a crash is exact, SIGTERM saves and exits 0, a NaN/Inf loss never reaches disk, a corrupt
newest checkpoint falls back to the previous one, jit and pmap agree, early stopping survives a resume, the
run's artifacts are written and guarded against mixing runs, and 2 processes x 2 devices train like
1 process x 4 devices. Runs use the embedded scikit-image photos (7 train / 2 eval) at 16 px, a (8, 16)
U-Net and batch 8 on the 8 host CPU devices of conftest.
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from jaxcolor import checkpoint, train
from jaxcolor.data import input_pipeline

REPO = pathlib.Path(__file__).resolve().parents[1]
_CACHE_OPTIONS = {"jax_compilation_cache_dir": None, "jax_persistent_cache_min_compile_time_secs": 0,
                  "jax_persistent_cache_min_entry_size_bytes": 0}


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
  """A persistent XLA cache for this module: the runs compile the same few programs (~4 s each) again and
  again. Subprocesses get it through the JAX_* environment variables of `_cache_env`. Reset afterwards."""
  from jax._src import compilation_cache as cc
  d = tmp_path_factory.mktemp("jax_cache")
  old = {k: getattr(jax.config, k) for k in _CACHE_OPTIONS}
  for k, v in {**_CACHE_OPTIONS, "jax_compilation_cache_dir": str(d)}.items():
    jax.config.update(k, v)
  cc.reset_cache()
  yield d
  for k, v in old.items():
    jax.config.update(k, v)
  cc.reset_cache()


def _cache_env(cache_dir) -> dict:
  return {"JAX_COMPILATION_CACHE_DIR": str(cache_dir), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
          "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> pathlib.Path:
  """A TFDS data_dir with the skimage photos built once (subprocesses then only read it)."""
  d = tmp_path_factory.mktemp("tfds")
  input_pipeline.get_builder(input_pipeline.parse_config(_config(d)))
  return d


def _config(data_dir, **overrides):
  c = default.get_config()
  c.model_kwargs.features = (8, 16)
  c.image_size, c.batch_size, c.data_dir = 16, 8, str(data_dir)
  c.total_steps, c.log_every, c.checkpoint_every = 6, 1, 3
  c.eval_every, c.eval_batches, c.async_checkpoints = 0, 1, False
  c.prior_batches = 2
  c.update(overrides)
  return c


@pytest.fixture
def no_eval(monkeypatch):
  """Skips the evaluators (compiling the metrics costs seconds) where a test is not about them."""
  monkeypatch.setattr(train.Trainer, "evaluate", lambda self, state, step, writer, names=None: {})


def _hook_steps(monkeypatch, hook):
  """Wraps the compiled train step: hook(step_after, state, metrics) -> (state, metrics)."""
  compile_steps = train.Trainer.compile_steps

  def patched(self):
    compile_steps(self)
    step_fn = self.train_step

    def wrapped(state, batch):
      step = int(np.asarray(jax.device_get(state.step)).ravel()[0]) + 1
      return hook(step, *step_fn(state, batch))
    self.train_step = wrapped
  monkeypatch.setattr(train.Trainer, "compile_steps", patched)


def _sigterm_after(monkeypatch, at_step: int):
  """Sends a real SIGTERM to this process right after step `at_step` (the trainer's handler catches it)."""
  def hook(step, state, metrics):
    if step == at_step:
      os.kill(os.getpid(), signal.SIGTERM)
    return state, metrics
  _hook_steps(monkeypatch, hook)


def _restore(workdir, step=None):
  """(state pytree as numpy, meta, step) from workdir's checkpoints, restored as saved."""
  with checkpoint.Checkpointer(workdir, read_only=True) as ck:
    state, meta, s = ck.restore(step=step)
  return jax.tree.map(np.asarray, state), meta, s


def _assert_trees_equal(a, b, **tol):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  check = (lambda x, y: np.testing.assert_allclose(x, y, **tol)) if tol else np.testing.assert_array_equal
  jax.tree.map(lambda x, y: check(np.asarray(x), np.asarray(y)), a, b)


class _Crash(Exception):
  pass


def _crash_after_step_5(step, state, metrics):
  """A `_hook_steps` hook: the process 'dies' right after step 5 (the last checkpoint then is step 3)."""
  if step == 5:
    raise _Crash
  return state, metrics


# -- 1. kill and resume --------------------------------------------------------------------------------


def test_crash_and_resume_gives_the_uninterrupted_params(data_dir, tmp_path, monkeypatch, no_eval):
  """A run killed after step 5 (last checkpoint: step 3) and resumed ends with exactly the parameters,
  BatchNorm statistics and Adam state of an uninterrupted 6-step run: the data stream continues at the
  step (input_pipeline skips the consumed examples) and the step RNG is folded with the step."""
  cfg = _config(data_dir, optimizer="adam", learning_rate=1e-3)
  ref = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "ref"))

  with monkeypatch.context() as m:
    _hook_steps(m, _crash_after_step_5)
    with pytest.raises(_Crash):
      train.train_and_evaluate(cfg, tmp_path / "run")
  assert checkpoint.Checkpointer(tmp_path / "run", read_only=True).all_steps() == [3]

  resumed = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "run"))
  assert int(resumed.step) == 6
  _assert_trees_equal(resumed, ref)
  # The stream really moves on: a resumed run that re-read the first batches would differ.
  assert not np.array_equal(jax.tree.leaves(ref.params)[0], jax.tree.leaves(_restore(tmp_path / "run", 3)[0]
                                                                                ["params"])[0])


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
             TF_CPP_MIN_LOG_LEVEL="2", **_cache_env(cache_dir))
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
  _hook_steps(monkeypatch, poison)
  cfg = _config(data_dir, checkpoint_every=2, log_every=10)
  with pytest.raises(train.NonFiniteLossError, match=r"step 4\b.*from step 2\b"):
    train.train_and_evaluate(cfg, tmp_path / "wd")
  state, _, step = _restore(tmp_path / "wd")
  assert step == 2 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))


def test_huge_learning_rate_raises_and_keeps_a_finite_checkpoint(data_dir, tmp_path, no_eval):
  """Real divergence: SGD at lr 1e36, a checkpoint every step; step 1's update stays finite (huge), step 2's
  loss overflows. (Classification: a regression head, which starts at zero and ends in a tanh, saturates to a
  bounded loss instead of overflowing.)"""
  cfg = _config(data_dir, optimizer="sgd", momentum=0.0, learning_rate=1e36, checkpoint_every=1,
                head="classification", loss="cross_entropy")
  with pytest.raises(train.NonFiniteLossError,
                     match=r"loss became NaN or Inf at or before step 2\b.*from step 1\b"):
    train.train_and_evaluate(cfg, tmp_path / "wd")
  state, _, step = _restore(tmp_path / "wd")
  assert step == 1 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))


def test_non_finite_params_with_a_finite_loss_are_not_saved(data_dir, tmp_path, monkeypatch, no_eval):
  """Step k's loss is computed before step k's update, so an update that overflows shows in the loss only
  one step later; the save at step k must check the parameters themselves (here: Inf from step 2 on)."""
  def overflow(step, state, metrics):
    if step >= 2:
      state = state.replace(params=jax.tree.map(lambda x: x * jnp.inf, state.params))
    return state, metrics
  _hook_steps(monkeypatch, overflow)
  with pytest.raises(train.NonFiniteLossError, match=r"parameters became NaN or Inf at or before step 2\b.*"
                                                     r"from step 1\b"):
    train.train_and_evaluate(_config(data_dir, checkpoint_every=1), tmp_path / "wd")
  state, _, step = _restore(tmp_path / "wd")
  assert step == 1 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))


# -- 4. corrupt newest checkpoint ------------------------------------------------------------------------


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(data_dir, tmp_path, no_eval, caplog):
  cfg = _config(data_dir, total_steps=4, checkpoint_every=2)
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
  _assert_trees_equal(out, ref)  # steps 3 and 4 were trained again from step 2, identically


# -- 5. jit vs pmap ------------------------------------------------------------------------------------


def test_jit_and_pmap_runs_agree(data_dir, tmp_path, no_eval):
  assert jax.device_count() == 8
  out = {}
  for p in ("jit", "pmap"):
    cfg = _config(data_dir, parallelism=p, total_steps=3, optimizer="sgd", learning_rate=0.1)
    out[p] = jax.device_get(train.train_and_evaluate(cfg, tmp_path / p))
  assert int(out["pmap"].step) == int(out["jit"].step) == 3
  _assert_trees_equal(out["pmap"].params, out["jit"].params, rtol=1e-4, atol=1e-5)
  _assert_trees_equal(out["pmap"].batch_stats, out["jit"].batch_stats, rtol=1e-4, atol=1e-5)
  # pmap's checkpoint holds the unreplicated state (no device axis), like jit's.
  a, b = _restore(tmp_path / "pmap")[0], _restore(tmp_path / "jit")[0]
  assert jax.tree.map(np.shape, a) == jax.tree.map(np.shape, b)


# -- 5b. stateful loss terms (a discriminator in the train state) ----------------------------------------


def _adversarial_config(data_dir, **overrides):
  """L2 + adversarial on the tiny U-Net; a small PatchGAN (width 4, 2 strided layers) with Adam."""
  cfg = _config(data_dir, head="regression", loss="l2", optimizer="adam", learning_rate=1e-3, **overrides)
  cfg.losses.l2, cfg.losses.adversarial = 1.0, 0.1
  cfg.loss_options.adversarial.width, cfg.loss_options.adversarial.layers = 4, 2
  return cfg


def test_discriminator_state_resumes_exactly(data_dir, tmp_path, monkeypatch, no_eval):
  """A run with a discriminator, killed after step 5 and resumed from step 3, ends with the colorizer's and the
  discriminator's parameters, spectral vectors and both Adam states of the uninterrupted run."""
  cfg = _adversarial_config(data_dir)
  ref = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "ref"))
  assert set(ref.loss_state) == {"adversarial"}
  assert set(ref.loss_state["adversarial"]) == {"params", "spectral", "opt_state"}

  with monkeypatch.context() as m:
    _hook_steps(m, _crash_after_step_5)
    with pytest.raises(_Crash):
      train.train_and_evaluate(cfg, tmp_path / "run")
  saved = _restore(tmp_path / "run", 3)[0]
  assert "loss_state" in saved  # the discriminator is in the checkpoint
  resumed = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "run"))
  _assert_trees_equal(resumed, ref)
  start = jax.device_get(train.Trainer(cfg, tmp_path / "fresh").init_state().loss_state)
  assert not np.array_equal(jax.tree.leaves(start)[0], jax.tree.leaves(ref.loss_state)[0])  # D did train


@pytest.mark.slow  # the pmean of D's gradient; test_jit_and_pmap_runs_agree covers the rest of the pmap path
def test_discriminator_under_pmap_matches_jit(data_dir, tmp_path, no_eval):
  out = {p: jax.device_get(train.train_and_evaluate(_adversarial_config(data_dir, parallelism=p, total_steps=3),
                                                    tmp_path / p)) for p in ("jit", "pmap")}
  _assert_trees_equal(out["pmap"].params, out["jit"].params, rtol=1e-4, atol=1e-5)
  _assert_trees_equal(out["pmap"].loss_state, out["jit"].loss_state, rtol=1e-4, atol=1e-5)


def test_non_finite_discriminator_is_not_saved(data_dir, tmp_path, monkeypatch, no_eval):
  """A discriminator that overflows (the colorizer's loss still finite at that step) stops the run before the
  save, like the colorizer's own parameters."""
  def overflow(step, state, metrics):
    if step >= 2:
      state = state.replace(loss_state=jax.tree.map(lambda x: x * jnp.inf if x.dtype.kind == "f" else x,
                                                    state.loss_state))
    return state, metrics
  _hook_steps(monkeypatch, overflow)
  with pytest.raises(train.NonFiniteLossError, match=r"parameters became NaN or Inf at or before step 2\b"):
    train.train_and_evaluate(_adversarial_config(data_dir, checkpoint_every=1), tmp_path / "wd")
  state, _, step = _restore(tmp_path / "wd")
  assert step == 1 and all(np.isfinite(x).all() for x in jax.tree.leaves(state) if x.dtype.kind == "f")


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
  cfg = _config(data_dir, eval_every=1, early_stopping_metric="color_metrics/ab_mae",
                early_stopping_patience=2, checkpoint_every=100)

  out = train.train_and_evaluate(cfg, tmp_path / "straight")
  assert int(out.step) == 3 and evals == [1, 2, 3]
  _, meta, step = _restore(tmp_path / "straight")
  assert step == 3 and meta["best"] == 1.0 and meta["evals_since_best"] == 2 and meta["early_stopped_at"] == 3

  evals.clear()
  with monkeypatch.context() as m:
    _sigterm_after(m, 2)
    train.train_and_evaluate(cfg, tmp_path / "resumed")
  _, meta, step = _restore(tmp_path / "resumed")
  assert step == 2 and meta["best"] == 1.0 and meta["evals_since_best"] == 1
  out = train.train_and_evaluate(cfg, tmp_path / "resumed")
  assert int(out.step) == 3 and evals == [1, 2, 3]
  # A finished (early-stopped) run launched again does not train on.
  out = train.train_and_evaluate(cfg, tmp_path / "resumed")
  assert int(out.step) == 3 and evals == [1, 2, 3]
  assert checkpoint.Checkpointer(tmp_path / "resumed", read_only=True).latest_step() == 3


def test_early_stopping_metric_must_exist(data_dir, tmp_path, monkeypatch):
  monkeypatch.setattr(train.Trainer, "evaluate", lambda self, state, step, writer, names=None: {"a/b": 1.0})
  cfg = _config(data_dir, eval_every=1, early_stopping_metric="a/nope", total_steps=2)
  with pytest.raises(ValueError, match="a/nope.*a/b"):
    train.train_and_evaluate(cfg, tmp_path / "wd")


def test_evaluations_run_each_at_its_own_cadence(data_dir, tmp_path, monkeypatch):
  """config.evals: the run's split every 2 steps, a second evaluation (the same photos at 32 px, one batch)
  only at the end; each under its own name."""
  from jaxcolor.evaluation import evaluators
  cfg = _config(data_dir, total_steps=4, eval_every=2, checkpoint_every=100)
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
  cfg = _config(data_dir, head="classification", loss="cross_entropy", total_steps=2, checkpoint_every=2,
                eval_every=0)
  wd = tmp_path / "wd"
  train.train_and_evaluate(cfg, wd)
  assert json.loads((wd / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict()))
  assert list((wd / "tensorboard").glob("events.out.tfevents.*"))
  assert (wd / "samples" / "step_00000002.png").stat().st_size > 0
  art = checkpoint.load_run_artifacts(wd)
  assert art.bins.num_bins == 313 and art.prior.shape == (313,) and abs(art.prior.sum() - 1) < 1e-4
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2]

  for change in (dict(learning_rate=0.5), dict(bin_step=20.0), dict(head="regression", loss="l2")):
    other = _config(data_dir, **{**dict(head="classification", loss="cross_entropy", total_steps=2,
                                        checkpoint_every=2), **change})
    with pytest.raises(ValueError, match=r"different config.*" + re.escape(sorted(change)[0])):
      train.train_and_evaluate(other, wd)
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2]
  assert json.loads((wd / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict()))

  longer = _config(data_dir, head="classification", loss="cross_entropy", total_steps=3, checkpoint_every=2,
                   eval_every=0)  # loop fields may change on resume: train the same run one step longer
  assert int(train.train_and_evaluate(longer, wd).step) == 3
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2, 3]
  assert json.loads((wd / "config.json").read_text())["total_steps"] == 3


def test_workdir_from_before_added_fields_resumes(tmp_path):
  """A config.json that predates fields (top-level or nested) reads as holding their defaults: it matches a config
  holding those values, and only those; another value of such a field is a different run."""
  cfg = _config(tmp_path / "tfds")
  old = cfg.to_dict()
  del old["weight_decay"], old["weight_decay_on"], old["augment"]["zoom"]
  checkpoint.save_run_artifacts(tmp_path, old)
  assert "zoom" not in checkpoint.saved_config(tmp_path)["augment"]  # read as jaxcolor.defaults' 0.0
  train._check_same_config(cfg, tmp_path)
  checkpoint.save_run_artifacts(tmp_path, cfg.to_dict(), may_differ=train.RESUMABLE_KEYS)
  for change in (dict(weight_decay=0.01), dict(weight_decay_on="kernels"), dict(learning_rate=0.5)):
    with pytest.raises(ValueError, match="different config.*" + next(iter(change))):
      train._check_same_config(_config(tmp_path / "tfds", **change), tmp_path)
  c = _config(tmp_path / "tfds")
  c.augment.zoom = 0.1
  with pytest.raises(ValueError, match="different config.*augment.zoom"):
    train._check_same_config(c, tmp_path)


def test_config_json_written_by_an_earlier_main_resumes(tmp_path):
  """The config.json of the first shipped `vivid` run (tests/data: as main wrote it on 2026-12-01, data_dir aside; before
  init_from_exclude existed) resumes under today's recipe; a field it predates set to another value is a new run."""
  from configs import reference_vivid
  saved = json.loads((pathlib.Path(__file__).parent / "data" / "config_vivid_2026-12-01.json").read_text())
  assert "init_from_exclude" not in saved  # the file really predates the field
  (tmp_path / "config.json").write_text(json.dumps(saved))
  train._check_same_config(reference_vivid.get_config(), tmp_path)
  c = reference_vivid.get_config()
  c.init_from_exclude = ("params/head",)
  with pytest.raises(ValueError, match="different config.*init_from_exclude"):
    train._check_same_config(c, tmp_path)


# -- 8. multi-host ---------------------------------------------------------------------------------------


_DRIVER = """
import os, sys
sys.path.insert(0, {repo!r})
import jax
import numpy as np
from jaxcolor import parallel, train
from jaxcolor.data import input_pipeline
from tests.test_train import _config

parallel.maybe_initialize_distributed()
out, workdir, data_dir, mode, parallelism = sys.argv[1:6]
if mode == "fed_like_2_processes":
  # One process reading what 2 processes read: its global batch is process 0's half followed by process
  # 1's, which is how make_array_from_process_local_data lays out the 2-process global batch.
  original = input_pipeline.train_dataset
  def train_dataset(config, *, process_index=None, process_count=None, start_step=0):
    import tensorflow as tf
    halves = [original(config, process_index=i, process_count=2, start_step=start_step) for i in range(2)]
    return tf.data.Dataset.zip(tuple(halves)).map(
        lambda a, b: {{k: tf.concat([a[k], b[k]], 0) for k in a}})
  input_pipeline.train_dataset = train_dataset
cfg = _config(data_dir, total_steps=3, optimizer="sgd", learning_rate=0.1, checkpoint_every=2,
              parallelism=parallelism)
if mode == "multi":  # stop after step 2 (evaluating there), then resume from its checkpoint
  first = cfg.copy_and_resolve_references()
  first.total_steps = 2
  train.train_and_evaluate(first, workdir)
state = train.train_and_evaluate(cfg, workdir)
if jax.process_index() == 0:
  flat = jax.tree_util.tree_flatten_with_path(jax.device_get((state.params, state.batch_stats)))[0]
  np.savez(out, **{{jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}})
print("DONE", jax.process_index(), jax.process_count(), jax.device_count(), flush=True)
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("parallelism", ["jit", "pmap"])
def test_two_processes_match_one_process(data_dir, tmp_path, compilation_cache, parallelism):
  """2 processes x 2 CPU devices == 1 process x 4 devices for the same global batches (SGD, 3 steps).

  Each process reads its own disjoint half of the data (tfds.split_for_jax_process) with its own shuffle
  seed, so a plain 1-process run sees other examples. The 1-process reference is therefore fed exactly the
  2-process global batches: process 0's per-process batch followed by process 1's, both from
  input_pipeline.train_dataset(process_index=i, process_count=2).
  """
  driver = tmp_path / "driver.py"
  driver.write_text(_DRIVER.format(repo=str(REPO)))
  base = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO),
              **_cache_env(compilation_cache))
  port = _free_port()
  procs = []
  for pid in range(2):
    env = dict(base, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid))
    procs.append(subprocess.Popen(
        [sys.executable, str(driver), str(tmp_path / "multi.npz"), str(tmp_path / "multi"), str(data_dir),
         "multi", parallelism], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  env = dict(base, XLA_FLAGS="--xla_force_host_platform_device_count=4")
  single = subprocess.run(
      [sys.executable, str(driver), str(tmp_path / "single.npz"), str(tmp_path / "single"), str(data_dir),
       "fed_like_2_processes", parallelism], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True, timeout=300)
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=300)[0])
    finally:
      p.kill()
  for p, o in zip(procs, outs):
    assert p.returncode == 0, o[-5000:]
  assert single.returncode == 0, single.stdout[-5000:]
  assert "DONE 0 2 4" in outs[0] and "DONE 1 2 4" in outs[1] and "DONE 0 1 4" in single.stdout
  multi, ref = np.load(tmp_path / "multi.npz"), np.load(tmp_path / "single.npz")
  assert sorted(multi) == sorted(ref)
  for k in ref:
    np.testing.assert_allclose(multi[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)
  assert checkpoint.Checkpointer(tmp_path / "multi", read_only=True).all_steps() == [2, 3]
