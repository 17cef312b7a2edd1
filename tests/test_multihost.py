"""Multi-host: 2 processes x 2 CPU devices (jax.distributed on localhost) train like 1 process x 4 devices,
stopping, evaluating and resuming from the shared workdir, for both jit and pmap.
"""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxcolor import checkpoint
from train_support import REPO, assert_trees_close, cache_env, compilation_cache, data_dir  # noqa: F401


# -- 8. multi-host ---------------------------------------------------------------------------------------


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
              **cache_env(compilation_cache))
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
  for part in ("[0]", "[1]"):  # params, batch_stats
    assert_trees_close({k: multi[k] for k in ref if k.startswith(part)}, {k: ref[k] for k in ref if k.startswith(part)})
  assert checkpoint.Checkpointer(tmp_path / "multi", read_only=True).all_steps() == [2, 3]
