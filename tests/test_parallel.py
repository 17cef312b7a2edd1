"""`parallel`: the batch-size check and the moves between the pmap layout and the mesh, on 8 CPU devices.

The 2-process runs (where `pmap_to_mesh` matters: Orbax refuses host-local arrays) are in test_train.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor import parallel


def _tree():
  return {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.asarray(7, jnp.int32)}


def test_check_batch_size():
  parallel.check_batch_size(16, "jit")
  with pytest.raises(ValueError, match="batch_size 12 is not divisible by the 8 devices"):
    parallel.check_batch_size(12, "pmap")
  with pytest.raises(ValueError, match="unknown parallelism 'vmap'.*jit, pmap"):
    parallel.check_batch_size(16, "vmap")


def test_shard_for_pmap_splits_the_batch_in_order():
  batch = {"image": np.arange(16 * 2).reshape(16, 2)}
  out = parallel.shard_for_pmap(batch)["image"]
  assert out.shape == (8, 2, 2)
  np.testing.assert_array_equal(out.reshape(16, 2), batch["image"])


def test_replicate_then_pmap_to_mesh_round_trip():
  mesh = parallel.make_mesh()
  rep = parallel.replicate(_tree())
  assert rep["w"].shape == (8, 2, 3)
  on_mesh = parallel.pmap_to_mesh(rep, mesh)
  for key, x in on_mesh.items():
    assert x.shape == _tree()[key].shape and x.sharding.is_equivalent_to(parallel.replicated(mesh), x.ndim)
    # every device holds its own full copy (each from the pmap device of the same id)
    for shard in x.addressable_shards:
      np.testing.assert_array_equal(shard.data, _tree()[key])
  # and back: a mesh-replicated tree goes to the pmap layout without a host round trip through _value
  again = parallel.replicate(on_mesh)
  np.testing.assert_array_equal(parallel.unreplicate(again)["w"], _tree()["w"])
  assert again["step"].shape == (8,)


def test_pmap_to_mesh_keeps_each_devices_copy():
  """Per-device values stay on their device: a state that diverged across devices is not silently unified."""
  mesh = parallel.make_mesh()
  per_device = jax.pmap(lambda x: x)(jnp.arange(8.0))
  on_mesh = parallel.pmap_to_mesh(per_device, mesh)
  got = {s.device.id: float(s.data) for s in on_mesh.addressable_shards}
  want = {d.id: float(i) for i, d in enumerate(jax.local_devices())}
  assert got == want
