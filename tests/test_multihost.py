"""Multi-host: 2 processes x 2 CPU devices (jax.distributed on localhost) train like 1 process x 4 devices,
stopping, evaluating and resuming from the shared workdir, for both jit and pmap.
"""
import pytest

from jaxcolor import checkpoint
from train_support import assert_trees_close, compilation_cache, data_dir, two_processes_and_one  # noqa: F401


@pytest.mark.slow
@pytest.mark.parametrize("parallelism", ["jit", "pmap"])
def test_two_processes_match_one_process(data_dir, tmp_path, compilation_cache, parallelism):
  """2 processes x 2 CPU devices == 1 process x 4 devices for the same global batches (SGD, 3 steps).

  Each process reads its own disjoint half of the data (tfds.split_for_jax_process) with its own shuffle
  seed, so a plain 1-process run sees other examples. The 1-process reference is therefore fed exactly the
  2-process global batches: process 0's per-process batch followed by process 1's, both from
  input_pipeline.train_dataset(process_index=i, process_count=2).
  """
  multi, ref = two_processes_and_one(tmp_path, str(tmp_path), str(data_dir), parallelism, compilation_cache)
  assert sorted(multi) == sorted(ref)
  for part in ("[0]", "[1]"):  # params, batch_stats
    assert_trees_close({k: multi[k] for k in ref if k.startswith(part)}, {k: ref[k] for k in ref if k.startswith(part)})
  assert checkpoint.Checkpointer(tmp_path / "multi", read_only=True).all_steps() == [2, 3]
