"""What the training-loop tests share: tiny configs, a TFDS data_dir built once, a per-module XLA cache, hooks
into the compiled train step, checkpoint reads and tree comparisons.

Imported by tests/test_train.py, tests/test_train_loss_state.py and tests/test_multihost.py (also by the
multi-host driver subprocess, as `tests.train_support`). Fixtures are used by importing them by name.
"""
import os
import pathlib
import signal

import jax
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
  again. Subprocesses get it through the JAX_* environment variables of `cache_env`. Reset afterwards."""
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


def cache_env(cache_dir) -> dict:
  return {"JAX_COMPILATION_CACHE_DIR": str(cache_dir), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
          "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> pathlib.Path:
  """A TFDS data_dir with the skimage photos built once (subprocesses then only read it)."""
  d = tmp_path_factory.mktemp("tfds")
  input_pipeline.get_builder(input_pipeline.parse_config(tiny_config(d)))
  return d


def tiny_config(data_dir, **overrides):
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


def hook_steps(monkeypatch, hook):
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


def sigterm_after(monkeypatch, at_step: int):
  """Sends a real SIGTERM to this process right after step `at_step` (the trainer's handler catches it)."""
  def hook(step, state, metrics):
    if step == at_step:
      os.kill(os.getpid(), signal.SIGTERM)
    return state, metrics
  hook_steps(monkeypatch, hook)


def restore(workdir, step=None):
  """(state pytree as numpy, meta, step) from workdir's checkpoints, restored as saved."""
  with checkpoint.Checkpointer(workdir, read_only=True) as ck:
    state, meta, s = ck.restore(step=step)
  return jax.tree.map(np.asarray, state), meta, s


def assert_trees_equal(a, b) -> None:
  """Bit-identical pytrees (same structure, shapes and values): for runs that compile the same programs."""
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def assert_trees_close(a, b, rel: float = 1e-4) -> None:
  """Pytrees equal up to float32 summation order: |a - b| <= rel * (largest |b| in the tree).

  For runs that compile different programs (jit vs pmap, 1 vs 2 processes): the all-reduce and the
  per-device sums add the same terms in another order. One tree-wide scale, not a per-leaf one: a leaf
  that stays near zero (a bias after 3 SGD steps) carries the absolute error of the sums that fed it,
  which follows the tree's magnitudes, not its own. With float32 (eps 6e-8), reductions over ~2,000
  pixels (error ~ sqrt(2000) eps ~ 3e-6 of the gradient scale) and a few steps, 1e-4 leaves a 10x margin.
  """
  assert jax.tree.structure(a) == jax.tree.structure(b)
  scale = max((float(np.max(np.abs(np.asarray(y)))) for y in jax.tree.leaves(b) if np.size(y)), default=0.0)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=rel * scale),
               a, b)


class Crash(Exception):
  pass


def crash_after_step_5(step, state, metrics):
  """A `hook_steps` hook: the process 'dies' right after step 5 (the last checkpoint then is step 3)."""
  if step == 5:
    raise Crash
  return state, metrics
