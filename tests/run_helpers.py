"""Run folders for tests of the inference side (colorize, evaluate, hints, reference export, init_from), which
need a run but not a trained one. Imported by name (`from run_helpers import write_untrained_run`)."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxcolor import builders, checkpoint, run_dir, steps


def write_untrained_run(config: ml_collections.ConfigDict, workdir: str | os.PathLike, seed: int = 0) -> None:
  """A run folder (local or gs://) with randomly initialized weights and a uniform prior, laid out as training
  leaves it: config.json, bins and prior (`run_dir.write_artifacts`) and one checkpoint at step 1."""
  bins = builders.build_bins(config)
  prior = None if bins is None else np.full((bins.num_bins,), 1.0 / bins.num_bins, np.float32)
  run_dir.write_artifacts(workdir, config, bins, prior, overwrite=True)
  model = builders.build_model(config, bins.num_bins if bins is not None else 2)
  size = config.image_size
  variables = jax.jit(lambda k: model.init({"params": k}, jnp.zeros((1, size, size, 1)), train=False))(
      steps.make_rng(seed))
  state = {"step": jnp.zeros((), jnp.int32), "params": variables["params"],
           "batch_stats": variables.get("batch_stats", {})}
  with checkpoint.Checkpointer(workdir, async_save=False) as ckpt:
    ckpt.maybe_save(1, state, force=True)
