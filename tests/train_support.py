"""What the training-loop tests share: tiny configs, a TFDS data_dir built once, a per-module XLA cache, hooks
into the compiled train step, checkpoint reads and tree comparisons.

Imported by tests/test_train.py, tests/test_train_loss_state.py and tests/test_multihost.py (also by the
multi-host driver subprocess, as `tests.train_support`). Fixtures are used by importing them by name.
"""
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys

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


# -- multi-host --------------------------------------------------------------------------------------------


_DRIVER = """
import os, sys
sys.path.insert(0, {repo!r})
import jax
import numpy as np
from jaxcolor import parallel, train
from jaxcolor.data import input_pipeline
from tests.train_support import tiny_config

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
cfg = tiny_config(data_dir, total_steps=3, optimizer="sgd", learning_rate=0.1, checkpoint_every=2,
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


def free_port() -> int:
  """A free port for the jax.distributed coordinator, below the kernel's ephemeral range: a port from that range
  (bind to 0) is free again once this socket closes, and any outgoing connection (gRPC, the other processes)
  may take it in the seconds before the coordinator binds it."""
  low = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
  rng = random.Random()
  for _ in range(100):
    port = rng.randrange(max(1024, low - 12000), low)
    with socket.socket() as s:
      try:
        s.bind(("localhost", port))
      except OSError:
        continue
      return port
  raise RuntimeError("no free port below the ephemeral range")


def two_processes_and_one(tmp_path: pathlib.Path, workdir_root: str, data_dir: str, parallelism: str,
                          cache_dir, env: dict | None = None) -> tuple[dict, dict]:
  """Trains the driver's run as 2 processes x 2 CPU devices (stop at 2, resume to 3) in `workdir_root`/multi and
  as 1 process x 4 devices fed the same global batches in `workdir_root`/single; returns both final
  {path: array} of (params, batch_stats).

  Each process's output goes to its own file (tmp_path/*.log), never to a pipe: a pipe nobody reads while
  the other run goes on fills up and blocks the process writing to it, and with it the collective the other
  process waits in. The logs' tails are in the failure message.
  """
  driver = tmp_path / "driver.py"
  driver.write_text(_DRIVER.format(repo=str(REPO)))
  base = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO),
              **cache_env(cache_dir), **(env or {}))
  port = free_port()
  runs = []
  for name, pid, devices in (("multi", 0, 2), ("multi", 1, 2), ("single", 0, 4)):
    e = dict(base, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    if name == "multi":
      e.update(JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid))
    log = tmp_path / f"{name}_{pid}.log"
    with open(log, "wb") as f:
      proc = subprocess.Popen(
          [sys.executable, str(driver), str(tmp_path / f"{name}.npz"), f"{workdir_root}/{name}", str(data_dir),
           name if name == "multi" else "fed_like_2_processes", parallelism],
          cwd=REPO, env=e, stdout=f, stderr=subprocess.STDOUT)
    runs.append((proc, log, f"DONE {pid} {1 if name == 'single' else 2} 4"))
  try:
    for proc, log, _ in runs:
      proc.wait(timeout=600)
  finally:
    for proc, _, _ in runs:
      proc.kill()
  for proc, log, done in runs:
    text = log.read_text(errors="replace")
    assert proc.returncode == 0 and done in text, f"{log.name}: exit {proc.returncode}\n{text[-5000:]}"
  return dict(np.load(tmp_path / "multi.npz")), dict(np.load(tmp_path / "single.npz"))
