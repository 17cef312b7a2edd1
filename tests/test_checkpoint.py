"""Checkpointing: sharded round trip, keep-N, async, save cadence, corrupt fallback, SIGTERM."""
import logging
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxcolor import checkpoint


@pytest.fixture(scope="module")
def mesh() -> Mesh:
  assert jax.device_count() == 8, "conftest should give 8 host CPU devices"
  return Mesh(np.array(jax.devices()), ("data",))


def _state(mesh: Mesh, seed: int = 0) -> dict:
  """A train-state-like pytree: replicated params, a data-sharded buffer, a uint32 PRNG key, a python int."""
  rep, dat = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
  w = jnp.arange(12, dtype=jnp.float32).reshape(4, 3) + seed
  return {
      "params": {"w": jax.device_put(w, rep), "b": jax.device_put(jnp.full((3,), seed, jnp.bfloat16), rep)},
      "buf": jax.device_put(jnp.arange(16, dtype=jnp.int32) * (seed + 1), dat),
      "rng": jax.device_put(jax.random.PRNGKey(seed), rep),
      "step": 100 + seed,
  }


def _template(mesh: Mesh) -> dict:
  """Abstract target with a different python int, so restored values must come from disk."""
  return {**checkpoint.abstract_state(_state(mesh)), "step": 0}


def _assert_restored(restored: dict, expected: dict) -> None:
  assert restored["step"] == expected["step"] and isinstance(restored["step"], int)
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
    if isinstance(want, jax.Array):
      assert isinstance(got, jax.Array)
      assert got.dtype == want.dtype and got.sharding == want.sharding
      np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def _sync(tmp_path, **kw) -> checkpoint.Checkpointer:
  return checkpoint.Checkpointer(tmp_path, async_save=False, **kw)


def test_round_trip_keeps_sharding_values_and_meta(tmp_path, mesh):
  state = _state(mesh, seed=3)
  with _sync(tmp_path, save_every=1) as ckpt:
    assert ckpt.latest_step() is None
    assert ckpt.maybe_save(7, state, {"data_position": 1234})
  with _sync(tmp_path) as ckpt:  # a new process resuming from the workdir
    assert ckpt.latest_step() == 7
    restored, meta, step = ckpt.restore(_template(mesh))
  assert step == 7
  assert meta == {"step": 7, "data_position": 1234}
  assert restored["rng"].dtype == jnp.uint32
  assert restored["params"]["w"].sharding.spec == P() and restored["buf"].sharding.spec == P("data")
  _assert_restored(restored, state)


def test_relative_workdir_saves_and_restores(tmp_path, mesh, monkeypatch):
  monkeypatch.chdir(tmp_path)  # `--workdir=runs/x` and the default run folder are relative paths
  state = _state(mesh, seed=1)
  with _sync("runs/x", save_every=1) as ckpt:
    assert ckpt.workdir == tmp_path / "runs" / "x"
    assert ckpt.maybe_save(3, state)
  with _sync("runs/x") as ckpt:
    restored, _, step = ckpt.restore(_template(mesh))
  assert step == 3
  _assert_restored(restored, state)


def test_single_process_save_compiles_nothing(tmp_path, mesh):
  """Replicated arrays are written whole, not sliced per device (a slicing program per shape cost seconds)."""
  rep = NamedSharding(mesh, P())
  state = {"params": {f"w{i}": jax.device_put(jnp.ones((5 + i, 7 + 2 * i)), rep) for i in range(4)}, "step": 1}
  jax.block_until_ready(state)
  compiles = []
  listener = lambda event, *args, **kw: compiles.append(event) if "compile" in event else None
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    ckpt = _sync(tmp_path)
    ckpt.maybe_save(1, state, force=True)
    ckpt.wait()
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert compiles == []
  restored = ckpt.restore({**checkpoint.abstract_state(state), "step": 0})[0]
  _assert_restored(restored, state)
  ckpt.close()


def test_checkpoints_from_before_loss_state_restore_and_the_layout_is_unchanged(tmp_path):
  """TrainState.loss_state (stateful loss terms) is a field a checkpoint may predate: a state saved without it
  (the TrainState of earlier mains) restores into today's TrainState with loss_state {}, and a run without
  stateful terms writes no loss_state entry, so both kinds of checkpoint have one layout."""
  import flax
  from jaxcolor import steps

  @flax.struct.dataclass
  class EarlierTrainState:
    step: jax.Array
    params: dict
    batch_stats: dict
    opt_state: tuple
    rng: jax.Array

  fields = dict(step=jnp.asarray(7, jnp.int32), params={"w": jnp.arange(3.0)}, batch_stats={},
                opt_state=(jnp.ones(3),), rng=jnp.zeros(2, jnp.uint32))
  for name, state in (("earlier", EarlierTrainState(**fields)), ("today", steps.TrainState(**fields))):
    with checkpoint.Checkpointer(tmp_path / name, async_save=False) as ck:
      ck.maybe_save(7, state, force=True)
    with checkpoint.Checkpointer(tmp_path / name, read_only=True) as ck:
      assert "loss_state" not in ck.restore()[0]  # as saved
      restored, _, _ = ck.restore(checkpoint.abstract_state(steps.TrainState(**fields)))
    assert isinstance(restored, steps.TrainState) and restored.loss_state == {}
    np.testing.assert_array_equal(restored.params["w"], np.arange(3.0))
    assert int(restored.step) == 7
  with_state = steps.TrainState(**fields, loss_state={"d": {"w": jnp.ones(2)}})
  with checkpoint.Checkpointer(tmp_path / "stateful", async_save=False) as ck:
    ck.maybe_save(7, with_state, force=True)
  with checkpoint.Checkpointer(tmp_path / "stateful", read_only=True) as ck:
    restored, _, _ = ck.restore(checkpoint.abstract_state(with_state))
  np.testing.assert_array_equal(restored.loss_state["d"]["w"], np.ones(2))


def test_keep_n_keeps_newest(tmp_path, mesh):
  state = _state(mesh)
  with _sync(tmp_path, keep=2, save_every=1) as ckpt:
    for s in range(1, 6):
      ckpt.maybe_save(s, state)
    assert ckpt.all_steps() == [4, 5]
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [4, 5]


def test_async_save_then_wait_survives_donation(tmp_path, mesh):
  state = _state(mesh, seed=1)
  expected = jax.tree.map(lambda x: np.asarray(x) if isinstance(x, jax.Array) else x, state)
  ckpt = checkpoint.Checkpointer(tmp_path, keep=3, save_every=2, async_save=True)
  template = _template(mesh)
  assert ckpt.maybe_save(2, state)
  # The next train step donates the state while the save may still be writing: the checkpoint must not care.
  step_fn = jax.jit(lambda p: jax.tree.map(lambda a: a * 0 + 7, p), donate_argnums=0)
  state["params"] = step_fn(state["params"])
  ckpt.wait()
  assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["2"]  # finalized: no tmp dir left
  restored = ckpt.restore(template)[0]
  for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(got), want)
  ckpt.close()


def test_maybe_save_respects_save_every_and_force(tmp_path, mesh):
  state = _state(mesh)
  with _sync(tmp_path, save_every=5) as ckpt:
    saved = [s for s in range(1, 12) if ckpt.maybe_save(s, state)]
    assert saved == [5, 10]
    assert ckpt.maybe_save(12, state, force=True)
    assert not ckpt.maybe_save(12, state, force=True)  # already saved: skipped, not an error
    assert ckpt.all_steps() == [5, 10, 12]
    assert not ckpt.should_stop()


def _corrupt(step_dir) -> None:
  """Truncates every file of the state item, as a crash mid-copy or a bad disk would."""
  files = [p for p in (step_dir / "state").rglob("*") if p.is_file()]
  assert files
  for p in files:
    p.write_bytes(b"")


def test_corrupt_latest_falls_back_with_warning(tmp_path, mesh, caplog):
  with _sync(tmp_path, save_every=1) as ckpt:
    ckpt.maybe_save(1, _state(mesh, seed=1))
    ckpt.maybe_save(2, _state(mesh, seed=2))
  _corrupt(tmp_path / "checkpoints" / "2")
  with _sync(tmp_path, save_every=1) as ckpt:
    with caplog.at_level(logging.WARNING, logger="jaxcolor.checkpoint"):
      restored, meta, step = ckpt.restore(_template(mesh))
    assert step == 1 and meta["step"] == 1
    _assert_restored(restored, _state(mesh, seed=1))
    warnings = [r.getMessage() for r in caplog.records if r.name == "jaxcolor.checkpoint"]
    assert any("step 2" in m and "failed to restore" in m for m in warnings), warnings
    # The corrupt step is moved aside, so training can save step 2 again.
    assert ckpt.all_steps() == [1]
    assert [p.name.split("-")[0] for p in (tmp_path / "checkpoints_corrupt").iterdir()] == ["2"]
    assert ckpt.maybe_save(2, _state(mesh, seed=5))
    _assert_restored(ckpt.restore(_template(mesh))[0], _state(mesh, seed=5))


def test_explicit_step_does_not_fall_back(tmp_path, mesh):
  with _sync(tmp_path, save_every=1) as ckpt:
    ckpt.maybe_save(1, _state(mesh))
    ckpt.maybe_save(2, _state(mesh))
  _corrupt(tmp_path / "checkpoints" / "2")
  with _sync(tmp_path) as ckpt:
    with pytest.raises(Exception):
      ckpt.restore(_template(mesh), step=2)
    assert ckpt.all_steps() == [1, 2]


def test_no_restorable_checkpoint_is_a_clear_error(tmp_path, mesh):
  with _sync(tmp_path) as ckpt:
    with pytest.raises(checkpoint.CheckpointNotFoundError, match=str(tmp_path / "checkpoints")):
      ckpt.restore(_template(mesh))
    ckpt.maybe_save(0, _state(mesh))
  _corrupt(tmp_path / "checkpoints" / "0")
  with _sync(tmp_path) as ckpt:
    with pytest.raises(checkpoint.CheckpointNotFoundError, match="could be restored.*step 0"):
      ckpt.restore(_template(mesh))


def test_read_only_restores_without_template_and_refuses_saves(tmp_path, mesh):
  state = _state(mesh, seed=2)
  with _sync(tmp_path, save_every=1) as ckpt:
    ckpt.maybe_save(4, state)
  ckpt = checkpoint.Checkpointer(tmp_path, read_only=True)
  restored, _, step = ckpt.restore()
  assert step == 4 and restored["step"] == state["step"]
  np.testing.assert_array_equal(np.asarray(restored["params"]["w"]), np.asarray(state["params"]["w"]))
  with pytest.raises(RuntimeError, match="read-only"):
    ckpt.maybe_save(5, state)
  ckpt.close()


def test_meta_must_be_json(tmp_path, mesh):
  with _sync(tmp_path) as ckpt:
    with pytest.raises(TypeError, match="JSON"):
      ckpt.maybe_save(0, _state(mesh), {"bad": object()})


def test_sigterm_requests_a_clean_stop(tmp_path, mesh):
  previous = checkpoint.install_sigterm_handler()
  try:
    with _sync(tmp_path, save_every=1000) as ckpt:
      assert not ckpt.should_stop()
      os.kill(os.getpid(), signal.SIGTERM)
      deadline = time.monotonic() + 5
      while not ckpt.should_stop() and time.monotonic() < deadline:
        time.sleep(0.01)  # the Python-level handler runs in the main thread between bytecodes
      assert ckpt.should_stop()
      # What the training loop does next: force a save at the current step, then exit.
      assert ckpt.maybe_save(17, _state(mesh), force=True)
    assert checkpoint.Checkpointer(tmp_path, read_only=True).latest_step() == 17
  finally:
    signal.signal(signal.SIGTERM, previous)
    checkpoint._STOP.clear()  # pylint: disable=protected-access
