"""Host -> device: per-process numpy batches -> global batch-sharded jax.Arrays, prefetched.

Why: every process reads its own disjoint part of the data (see `jaxcolor.data.input_pipeline`);
`jax.make_array_from_process_local_data` stitches those parts into one global array sharded
over the mesh's "data" axis, so jitted steps see the global batch
(global batch = per-process batch x process count). Prefetching keeps `depth` batches in flight
so host->device copies overlap the step. This module must not import TensorFlow.
"""
from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Iterator, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices: list | None = None, axis: str = DATA_AXIS) -> Mesh:
  """A 1-D mesh over all (or the given) devices with the batch axis named `axis`."""
  devs = np.asarray(jax.devices() if devices is None else devices)
  return Mesh(devs.reshape(-1), (axis,))


def batch_sharding(mesh: Mesh, axis: str = DATA_AXIS) -> NamedSharding:
  """Shards the leading (batch) dimension over `axis`, everything else replicated."""
  if axis not in mesh.axis_names:
    raise ValueError(f"mesh has no axis {axis!r}; its axes are {mesh.axis_names}")
  return NamedSharding(mesh, P(axis))


def _local_shards(sharding: NamedSharding) -> int:
  """How many distinct batch shards this process's devices hold."""
  spec = sharding.spec[0] if len(sharding.spec) else None
  axes = (spec,) if isinstance(spec, str) else tuple(spec or ())
  mesh = sharding.mesh
  coords = {tuple(idx[mesh.axis_names.index(a)] for a in axes)
            for idx, d in np.ndenumerate(mesh.devices) if d.process_index == jax.process_index()}
  return max(len(coords), 1)


def to_global(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Per-process batch {k: (b, ...)} -> global arrays {k: (b * processes, ...)} on `sharding`."""
  shards = _local_shards(sharding)
  out = {}
  for key, local in batch.items():
    local = np.asarray(local)
    if local.ndim == 0 or local.shape[0] % shards:
      raise ValueError(
          f"batch[{key!r}] has shape {local.shape}: its leading (per-process batch) dimension "
          f"must be divisible by the {shards} local data shards of the mesh")
    out[key] = jax.make_array_from_process_local_data(sharding, local)
  return out


def prefetch_to_device(batches: Iterable[Mapping[str, np.ndarray]], sharding: NamedSharding,
                       depth: int = 2) -> Iterator[dict[str, jax.Array]]:
  """Yields global sharded batches, keeping `depth` (>= 1) transfers queued ahead of the consumer.

  Transfers are asynchronous, so queuing `depth` batches overlaps the copy of batch i + depth
  with the computation on batch i.
  """
  if depth < 1:
    raise ValueError(f"prefetch depth must be >= 1, got {depth}")
  it = iter(batches)
  queue: collections.deque = collections.deque()

  def enqueue(n: int) -> None:
    for batch in itertools.islice(it, n):
      queue.append(to_global(batch, sharding))

  enqueue(depth)
  while queue:
    yield queue.popleft()
    enqueue(1)
