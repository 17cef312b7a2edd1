"""Checkpointing for training runs: Orbax CheckpointManager with resume, fallback and preemption handling.

A Checkpointer owns two folders of a run directory (`workdir`; the rest of it: `jaxcolor.run_dir`):
  checkpoints/<step>/  Orbax steps, items "state" (arrays, tensorstore/OCDBT) and "meta" (JSON)
  checkpoints_corrupt/ steps that failed to restore, moved aside so training can re-save those steps
Nothing here unpickles: arrays come back through tensorstore, metadata through `json`.

Preemption has two paths that the training loop sees through one call, `Checkpointer.should_stop()`:
  * single process: `install_sigterm_handler()` sets a flag on SIGTERM; the loop force-saves and exits.
  * multi-process (`jax.distributed.initialize`): JAX's preemption sync service owns SIGTERM (a C++ handler)
    and agrees on a common step across hosts; Orbax exposes it as `reached_preemption(step)`, which
    `maybe_save` checks every step and which makes it save and then `should_stop()` return True on every
    host at the same step. A per-host Python flag would make hosts stop at different steps and deadlock the
    collective save, so `install_sigterm_handler` does nothing there (it would also replace JAX's handler).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import signal
import threading
import time
from typing import Any, Mapping

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocp_managers

from jaxcolor import storage

log = logging.getLogger(__name__)

PyTree = Any
CHECKPOINT_DIR = "checkpoints"
CORRUPT_DIR = "checkpoints_corrupt"

_STOP = threading.Event()  # set by the SIGTERM handler, polled via should_stop()


@functools.cache  # once per process
def _write_replicated_arrays_whole() -> None:
  """In a single process, have Orbax write each replicated array once, from one device.

  Orbax's default ("replica-parallel") splits a replicated array into one slice per device so that hosts
  share the writing; that needs a slicing program per array shape, which on one process gains nothing and
  cost 4.0 s of a 4.3 s first save of a tiny U-Net on 8 CPU devices (0.3 s without). Multi-process runs
  keep the default. Replaces the process-wide jax.Array handler, so call it only after the backend is up.
  """
  if jax.process_count() == 1:
    absl_log = logging.getLogger("absl")  # Orbax warns on every override; this one is intended
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)
    try:
      ocp.type_handlers.register_type_handler(
          jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False), override=True)
    finally:
      absl_log.setLevel(level)


class CheckpointNotFoundError(FileNotFoundError):
  """No checkpoint in the directory could be restored (none saved, or all corrupt)."""


def install_sigterm_handler() -> Any:
  """Makes SIGTERM request a clean stop (save, then exit) instead of killing the process.

  Returns the previous handler (for `signal.signal(signal.SIGTERM, previous)`), or None when skipped in
  a multi-process run, where JAX/Orbax preemption sync handles SIGTERM (see module docstring). Must be
  called from the main thread. Clears any earlier stop request.
  """
  if jax.process_count() > 1:
    log.info("multi-process run: leaving SIGTERM to JAX's preemption sync (Checkpointer.reached_preemption)")
    return None
  _STOP.clear()

  def _on_sigterm(signum: int, frame: Any) -> None:
    del signum, frame
    _STOP.set()  # only set a flag: the loop saves at a step boundary, never inside a jitted step

  return signal.signal(signal.SIGTERM, _on_sigterm)


def abstract_state(tree: PyTree) -> PyTree:
  """Restore template of a concrete state: jax.Arrays -> ShapeDtypeStruct with their sharding, rest as is."""
  def leaf(x: Any) -> Any:
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding) if isinstance(x, jax.Array) else x
  return jax.tree.map(leaf, tree)


def _as_saved(tree: PyTree) -> PyTree:
  """A struct state as the dict written to disk: fields that have a default and hold an empty dict (e.g.
  `TrainState.loss_state` without stateful loss terms) are left out, so checkpoints from before such a field
  existed and checkpoints of runs that do not use it have the same layout. Other trees: unchanged."""
  if not dataclasses.is_dataclass(tree) or isinstance(tree, type):
    return tree
  def left_out(f: dataclasses.Field) -> bool:
    has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    return has_default and isinstance(getattr(tree, f.name), dict) and not getattr(tree, f.name)
  return {f.name: getattr(tree, f.name) for f in dataclasses.fields(tree) if not left_out(f)}


def _from_saved(restored: PyTree, template: PyTree) -> PyTree:
  """The inverse of `_as_saved`: the restored dict back into the template's struct (left-out fields: {})."""
  if not dataclasses.is_dataclass(template) or isinstance(template, type):
    return restored
  return type(template)(**{f.name: restored.get(f.name, {}) for f in dataclasses.fields(template)})


class Checkpointer:
  """Periodic (async) saves of a train state pytree plus JSON metadata, keep-N, resume with fallback.

  The state is any pytree of jax.Arrays (sharded or not), numpy arrays and python scalars. `meta` is a
  JSON-able dict (step, data position, ...); the run's config lives beside, in config.json (`jaxcolor.run_dir`).
  """

  def __init__(self, workdir: str | os.PathLike, *, keep: int = 3, save_every: int = 1000,
               async_save: bool = True, read_only: bool = False):
    if keep < 1 or save_every < 1:
      raise ValueError(f"need keep >= 1 and save_every >= 1, got keep={keep}, save_every={save_every}")
    self.workdir = storage.path(workdir)  # absolute when local (Orbax needs that); gs://... as given
    self.directory = self.workdir / CHECKPOINT_DIR
    self.save_every, self.read_only = save_every, read_only
    self._preempted = False
    self._stop_logged = False
    self._n_quarantined = 0
    if read_only:  # explicit values avoid Orbax's "read_only=True, setting ..." warnings
      options = ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0,
                                             enable_async_checkpointing=False)
    else:
      _write_replicated_arrays_whole()
      options = ocp.CheckpointManagerOptions(
          # maybe_save decides itself (and passes force=True); this policy only keeps
          # CheckpointManager.should_save consistent for anyone asking it directly.
          save_decision_policy=ocp_managers.AnySavePolicy([
              ocp_managers.FixedIntervalPolicy(save_every),
              ocp_managers.PreemptionCheckpointingPolicy()]),
          preservation_policy=ocp_managers.LatestN(keep),
          enable_async_checkpointing=async_save,
          cleanup_tmp_directories=True,  # half-written steps of a killed async save
      )
    self._mngr = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

  # -- saving --------------------------------------------------------------------------------------------

  def reached_preemption(self, step: int) -> bool:
    """True at the step all hosts agreed to save at after a preemption notice (Orbax/JAX sync point).

    Always False without jax.distributed. Once hit, `should_stop()` stays True.
    """
    hit = bool(self._mngr.reached_preemption(step))
    self._preempted |= hit
    return hit

  def maybe_save(self, step: int, state: PyTree, meta: Mapping[str, Any] | None = None,
                 force: bool = False) -> bool:
    """Saves when step % save_every == 0, when forced, or at a preemption sync point; returns whether it did.

    Call on every host at every step. A step that is already saved is skipped (returns False). With async
    saves the arrays are copied off the devices before this returns, so the state may be donated afterwards.
    """
    if self.read_only:
      raise RuntimeError(f"Checkpointer for {self.directory} is read-only")
    preempted = self.reached_preemption(step)
    if not (force or preempted or step % self.save_every == 0):
      return False
    if step in self._mngr.all_steps():
      return False
    full_meta = {**to_json_dict(meta or {}), "step": int(step)}
    return self._mngr.save(step, force=True, args=ocp.args.Composite(
        state=ocp.args.StandardSave(_as_saved(state)), meta=ocp.args.JsonSave(full_meta)))

  def wait(self) -> None:
    """Blocks until pending async saves are on disk (and old steps deleted)."""
    self._mngr.wait_until_finished()

  def should_stop(self) -> bool:
    """True after SIGTERM (single process) or a preemption sync point (multi-host): save and exit."""
    stop = _STOP.is_set() or self._preempted
    if stop and not self._stop_logged:
      self._stop_logged = True
      log.warning("preemption requested (%s): stopping after a final checkpoint",
                  "multi-host sync point" if self._preempted else "SIGTERM")
    return stop

  # -- restoring -----------------------------------------------------------------------------------------

  def all_steps(self) -> list[int]:
    """Saved steps, ascending (including any still being written asynchronously)."""
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    """Newest saved step, or None for a fresh run."""
    return self._mngr.latest_step()

  def restore(self, template_state: PyTree | None = None,
              step: int | None = None) -> tuple[PyTree, dict[str, Any], int]:
    """Restores (state, meta, step) from `step`, or from the newest step that restores cleanly.

    `template_state` is an abstract pytree (ShapeDtypeStruct with .sharding, see `abstract_state`); arrays
    come back with its shardings and dtypes. None restores as saved (same device topology needed).
    Without `step`, a step that fails (truncated/missing files) is logged as a warning and the next older
    one is tried; failed steps are moved to workdir/checkpoints_corrupt so training can save them again.
    """
    self.wait()
    candidates = [step] if step is not None else sorted(self._mngr.all_steps(), reverse=True)
    if not candidates:
      raise CheckpointNotFoundError(f"no checkpoint to restore in {self.directory}")
    failed: list[tuple[int, str]] = []
    for s in candidates:
      try:
        out = self._mngr.restore(s, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_as_saved(template_state)), meta=ocp.args.JsonRestore()))
      except Exception as e:  # pylint: disable=broad-except  # tensorstore/json/IO errors differ by damage
        if step is not None:
          raise
        err = f"{type(e).__name__}: {str(e)[:500]}"
        log.warning("checkpoint step %d in %s failed to restore, trying an older one: %s",
                    s, self.directory, err)
        failed.append((s, err))
        continue
      if failed:
        self._quarantine([f for f, _ in failed])
      return _from_saved(out["state"], template_state), dict(out["meta"]), s
    tried = "; ".join(f"step {s}: {e}" for s, e in failed)
    raise CheckpointNotFoundError(f"no checkpoint in {self.directory} could be restored ({tried})")

  def _quarantine(self, steps: list[int]) -> None:
    """Moves corrupt steps out of the Orbax directory (primary host), then re-lists steps on every host."""
    if self.read_only:
      return
    if jax.process_index() == 0:
      dest = self.workdir / CORRUPT_DIR
      dest.mkdir(parents=True, exist_ok=True)
      for s in steps:
        source, target = self.directory / str(s), dest / f"{s}-{time.strftime('%Y%m%d-%H%M%S')}"
        if source.exists():
          source.rename(target)  # a local rename; on an object store a copy + delete of each file
          log.warning("moved corrupt checkpoint step %d to %s", s, target)
    self._n_quarantined += 1  # barrier names must be unique and equal on all hosts
    ocp.multihost.sync_global_processes(f"jaxcolor_checkpoint_quarantine_{self._n_quarantined}")
    self._mngr.reload()

  def close(self) -> None:
    """Waits for pending saves and releases Orbax's threads."""
    self._mngr.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()


def to_json_dict(d: Any) -> dict[str, Any]:
  """Plain JSON-normalized dict (tuples -> lists), failing here rather than in an async save thread."""
  if hasattr(d, "to_dict"):
    d = d.to_dict()
  try:
    return json.loads(json.dumps(dict(d), sort_keys=True))
  except TypeError as e:
    raise TypeError(f"checkpoint metadata and run configs must be JSON-serializable: {e}") from e
