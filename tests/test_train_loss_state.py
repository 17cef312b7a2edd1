"""Training with a stateful loss term (a discriminator in `TrainState.loss_state`): exact resume, pmap = jit,
and a non-finite discriminator never saved. Same tiny runs as test_train.py.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import train
from train_support import (Crash, assert_trees_close, assert_trees_equal, compilation_cache,  # noqa: F401
                           crash_after_step_5, data_dir, hook_steps, no_eval, restore, tiny_config)


# -- 5b. stateful loss terms (a discriminator in the train state) ----------------------------------------


def _adversarial_config(data_dir, **overrides):
  """L2 + adversarial on the tiny U-Net; a small PatchGAN (width 4, 2 strided layers) with Adam."""
  cfg = tiny_config(data_dir, head="regression", loss="l2", optimizer="adam", learning_rate=1e-3, **overrides)
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
    hook_steps(m, crash_after_step_5)
    with pytest.raises(Crash):
      train.train_and_evaluate(cfg, tmp_path / "run")
  saved = restore(tmp_path / "run", 3)[0]
  assert "loss_state" in saved  # the discriminator is in the checkpoint
  resumed = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "run"))
  assert_trees_equal(resumed, ref)
  start = jax.device_get(train.Trainer(cfg, tmp_path / "fresh").init_state().loss_state)
  assert not np.array_equal(jax.tree.leaves(start)[0], jax.tree.leaves(ref.loss_state)[0])  # D did train


@pytest.mark.slow  # the pmean of D's gradient; test_jit_and_pmap_runs_agree covers the rest of the pmap path
def test_discriminator_under_pmap_matches_jit(data_dir, tmp_path, no_eval):
  out = {p: jax.device_get(train.train_and_evaluate(_adversarial_config(data_dir, parallelism=p, total_steps=3),
                                                    tmp_path / p)) for p in ("jit", "pmap")}
  assert_trees_close(out["pmap"].params, out["jit"].params)
  assert_trees_close(out["pmap"].loss_state, out["jit"].loss_state)


def test_non_finite_discriminator_is_not_saved(data_dir, tmp_path, monkeypatch, no_eval):
  """A discriminator that overflows (the colorizer's loss still finite at that step) stops the run before the
  save, like the colorizer's own parameters."""
  def overflow(step, state, metrics):
    if step >= 2:
      state = state.replace(loss_state=jax.tree.map(lambda x: x * jnp.inf if x.dtype.kind == "f" else x,
                                                    state.loss_state))
    return state, metrics
  hook_steps(monkeypatch, overflow)
  with pytest.raises(train.NonFiniteLossError, match=r"parameters became NaN or Inf at or before step 2\b"):
    train.train_and_evaluate(_adversarial_config(data_dir, checkpoint_every=1), tmp_path / "wd")
  state, _, step = restore(tmp_path / "wd")
  assert step == 1 and all(np.isfinite(x).all() for x in jax.tree.leaves(state) if x.dtype.kind == "f")
