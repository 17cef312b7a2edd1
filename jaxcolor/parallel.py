"""Devices and data parallelism: the device mesh for `jax.jit`, the `jax.pmap` layout, multi-host start-up.

Two ways to run the same pure step (see `jaxcolor.steps`), chosen by `config.parallelism`:
- "jit" (default): one program over a 1-D `Mesh` of all devices; the state is replicated (`P()`), the batch is
  sharded over the "data" axis (`P("data")`), so XLA inserts the gradient all-reduce itself.
- "pmap": the state is replicated with a leading device axis, each device gets (per_device_batch, ...), and the
  step averages gradients and BatchNorm statistics over the "batch" axis explicitly.
Both see the same global batch = per-process batch x processes, so both give the parameters a single device
would (tests check it on 8 CPU devices).
"""
from __future__ import annotations

import os
from typing import Any

import flax.jax_utils
import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"  # mesh axis of the batch under jit
PMAP_AXIS = "batch"  # collective axis name under pmap
PARALLELISMS = ("jit", "pmap")


def maybe_initialize_distributed() -> None:
  """Starts `jax.distributed` when launched as one of several processes.

  On Cloud TPU VMs and under SLURM / Open MPI, `jax.distributed.initialize()` finds the coordinator by
  itself; elsewhere set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID. Does nothing for a
  single process, so the same command runs on a laptop and on every worker of a pod slice.
  """
  if jax.distributed.is_initialized():
    return
  env = os.environ
  if "JAX_COORDINATOR_ADDRESS" in env:
    jax.distributed.initialize(coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
                               num_processes=int(env["JAX_NUM_PROCESSES"]),
                               process_id=int(env["JAX_PROCESS_ID"]))
  elif "TPU_WORKER_HOSTNAMES" in env and "," in env["TPU_WORKER_HOSTNAMES"]:
    jax.distributed.initialize()  # multi-host TPU VM: everything comes from the metadata server
  else:
    return
  logging.info("jax.distributed: process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def make_mesh(devices: list | None = None) -> Mesh:
  """1-D mesh over all (or the given) devices with the batch axis "data"."""
  devs = np.asarray(jax.devices() if devices is None else devices)
  return Mesh(devs.reshape(-1), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, parallelism: str) -> None:
  """The global batch must split evenly over processes and devices; fails before anything compiles."""
  if parallelism not in PARALLELISMS:
    raise ValueError(f"unknown parallelism {parallelism!r}; choose one of: {', '.join(PARALLELISMS)}")
  if global_batch % jax.device_count():
    raise ValueError(f"batch_size {global_batch} is not divisible by the {jax.device_count()} devices "
                     f"({jax.process_count()} processes x {jax.local_device_count()} local)")


def shard_for_pmap(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Per-process batch {k: (b, ...)} -> {k: (local_devices, b / local_devices, ...)} for `jax.pmap`."""
  n = jax.local_device_count()
  return {k: np.asarray(v).reshape((n, -1) + np.shape(v)[1:]) for k, v in batch.items()}


def replicate(tree: Any) -> Any:
  """Copies a pytree onto every local device with a leading device axis (the pmap state layout).

  Global arrays (replicated on a mesh that spans several processes) are read from this process's own copy.
  """
  local = jax.tree.map(lambda x: x.addressable_data(0) if isinstance(x, jax.Array) else x, tree)
  return flax.jax_utils.replicate(local)


def unreplicate(tree: Any) -> Any:
  """The first device's copy of a pmap-replicated pytree (host-local: for this process's own use)."""
  return jax.tree.map(lambda x: x[0], tree)


def pmap_to_mesh(tree: Any, mesh: Mesh) -> Any:
  """A pmap-replicated pytree {(local_devices, ...)} -> global arrays replicated on `mesh` {(...)}.

  Each device keeps its own copy (nothing crosses devices or the host). Under jax.distributed this is what
  `jax.jit` over the mesh and Orbax need: `unreplicate`'s arrays are host-local there, and Orbax refuses them.
  """
  sharding = replicated(mesh)

  def one(x: jax.Array) -> jax.Array:
    copies = {s.device: s.data for s in x.addressable_shards}
    return jax.make_array_from_single_device_arrays(
        x.shape[1:], sharding, [copies[d].reshape(x.shape[1:]) for d in mesh.local_devices])

  return jax.tree.map(one, tree)
