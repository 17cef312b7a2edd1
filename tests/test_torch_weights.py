"""models.torch_weights: PyTorch state dicts read without PyTorch equal torch.load(weights_only=True), in both
on-disk layouts; anything but tensors in dicts is refused before it can run."""
import os
import pickle

import numpy as np
import pytest

from jaxcolor.models import torch_weights

torch = pytest.importorskip("torch")


def state_dict():
  """Every storage type the reader knows, a non-contiguous view and two tensors sharing one storage."""
  g = torch.Generator().manual_seed(0)
  base = torch.randn(6, 5, generator=g)
  return {
      "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
      "fc.weight_t": base.t(),  # strides (1, 5)
      "shared.a": base[1],  # offset 5 into base's storage
      "shared.b": base[2:4, 1:3],  # offset 11, strides (5, 1)
      "half": torch.randn(7, generator=g).half(),
      "bf16": torch.randn(3, 2, generator=g).bfloat16(),
      "double": torch.randn(2, generator=g).double(),
      "bn.num_batches_tracked": torch.tensor(12345, dtype=torch.int64),
      "int32": torch.arange(5, dtype=torch.int32),
      "int16": torch.arange(3, dtype=torch.int16),
      "int8": torch.tensor([-3, 4], dtype=torch.int8),
      "uint8": torch.tensor([0, 255], dtype=torch.uint8),
      "bool": torch.tensor([True, False, True]),
      "scalar": torch.tensor(2.5),
  }


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_equals_torch_load(tmp_path, zipped):
  path = tmp_path / "w.pth"
  sd = state_dict()
  torch.save(sd, path, _use_new_zipfile_serialization=zipped)
  ours = torch_weights.read_state_dict(path)
  ref = torch.load(path, weights_only=True)
  assert list(ours) == list(ref)
  for name, t in ref.items():
    expected = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    assert ours[name].dtype == expected.dtype and ours[name].shape == expected.shape, name
    np.testing.assert_array_equal(ours[name], expected, err_msg=name)


def test_refuses_code_and_never_runs_it(tmp_path):
  marker = tmp_path / "ran"

  class Evil:
    def __reduce__(self):
      return (os.system, (f"touch {marker}",))

  for zipped in (True, False):
    path = tmp_path / f"evil_{zipped}.pth"
    torch.save({"w": torch.zeros(2), "x": Evil()}, path, _use_new_zipfile_serialization=zipped,
               pickle_protocol=2)
    with pytest.raises(torch_weights.TorchWeightsError, match=r"evil_.*refuses to load (posix|os)\.system"):
      torch_weights.read_state_dict(path)
  assert not marker.exists()


def test_clear_errors(tmp_path):
  path = tmp_path / "w.pth"
  torch.save({"w": torch.arange(1000, dtype=torch.float32)}, path, _use_new_zipfile_serialization=False)
  data = path.read_bytes()
  (tmp_path / "cut.pth").write_bytes(data[:-100])
  with pytest.raises(torch_weights.TorchWeightsError, match=r"cut\.pth: storage .* truncated"):
    torch_weights.read_state_dict(tmp_path / "cut.pth")
  (tmp_path / "text.pth").write_bytes(b"hello, not a checkpoint")
  with pytest.raises(torch_weights.TorchWeightsError, match=r"text\.pth"):
    torch_weights.read_state_dict(tmp_path / "text.pth")
  (tmp_path / "list.pth").write_bytes(pickle.dumps([1, 2]))
  with pytest.raises(torch_weights.TorchWeightsError, match=r"list\.pth"):
    torch_weights.read_state_dict(tmp_path / "list.pth")
  torch.save({"w": torch.zeros(1), "step": 3}, tmp_path / "mixed.pth")
  with pytest.raises(torch_weights.TorchWeightsError, match=r"mixed\.pth: entry 'step' is a int, not a tensor"):
    torch_weights.read_state_dict(tmp_path / "mixed.pth")
  with pytest.raises(FileNotFoundError, match="absent.pth"):
    torch_weights.read_state_dict(tmp_path / "absent.pth")
