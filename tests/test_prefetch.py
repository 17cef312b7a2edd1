"""Host batches -> global batch-sharded jax.Arrays, with prefetching (8 host CPU devices)."""
import jax
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from jaxcolor.data import prefetch


def _batch(i: int, b: int = 16) -> dict:
  img = np.full((b, 4, 4, 3), i, np.uint8)  # (b, H, W, 3)
  img[:, 0, 0, 0] = np.arange(b)
  return {"image": img, "mask": np.arange(b) % 3 != 0}


def test_to_global_shards_batch_axis():
  mesh = prefetch.data_mesh()
  sharding = prefetch.batch_sharding(mesh)
  assert sharding.spec == P("data")
  out = prefetch.to_global(_batch(7), sharding)
  n = jax.device_count()
  assert out["image"].shape == (16 * jax.process_count(), 4, 4, 3)
  assert out["image"].dtype == np.uint8 and out["mask"].dtype == np.bool_
  assert out["image"].sharding.is_equivalent_to(sharding, 4)
  shards = out["image"].addressable_shards
  assert len(shards) == n and {s.data.shape[0] for s in shards} == {16 // n}
  np.testing.assert_array_equal(np.asarray(out["image"]), _batch(7)["image"])
  np.testing.assert_array_equal(np.asarray(out["mask"]), _batch(7)["mask"])


def test_to_global_rejects_indivisible_batch():
  sharding = prefetch.batch_sharding(prefetch.data_mesh())
  with pytest.raises(ValueError, match=r"batch\['image'\].*divisible by the 8 local"):
    prefetch.to_global({"image": np.zeros((6, 2, 2, 3), np.uint8)}, sharding)


def test_two_axis_mesh_shards_over_data_only():
  devs = np.array(jax.devices()).reshape(4, 2)
  mesh = Mesh(devs, ("data", "model"))
  out = prefetch.to_global(_batch(1, 8), prefetch.batch_sharding(mesh))
  assert {s.data.shape[0] for s in out["image"].addressable_shards} == {2}
  with pytest.raises(ValueError, match="no axis 'batch'"):
    prefetch.batch_sharding(mesh, "batch")


@pytest.mark.parametrize("depth", [1, 3])
def test_prefetch_yields_all_batches_in_order(depth):
  pulled = []

  def source():
    for i in range(5):
      pulled.append(i)
      yield _batch(i)

  sharding = prefetch.batch_sharding(prefetch.data_mesh())
  it = prefetch.prefetch_to_device(source(), sharding, depth)
  first = next(it)
  assert int(first["image"][0, 1, 1, 0]) == 0
  assert len(pulled) == depth  # `depth` batches were queued before the first one was handed out
  rest = [int(b["image"][0, 1, 1, 0]) for b in it]
  assert rest == [1, 2, 3, 4]
  with pytest.raises(ValueError, match="depth"):
    next(prefetch.prefetch_to_device(source(), sharding, 0))
