"""Checks that the PyTorch benchmark models (benchmarks/torch_models.py) match the Flax ones.

    python benchmarks/check_torch_models.py

Needs PyTorch, a benchmark-only extra (not a dependency of jaxcolor), so this is a script, not a pytest test.
For unet, eccv16 and resnet50_unet (classification head, 313 bins) it asserts:
(a) equal trainable parameter counts (Flax "params" without "batch_stats"; PyTorch parameters without the
    BatchNorm running buffers), also for the regression head (2 outputs);
(b) equal output shapes, batch 1 at the benchmark size (unet 64, eccv16 176, resnet50_unet 224), from shape
    evaluation only (jax.eval_shape, PyTorch "meta" tensors), so nothing is computed at full size;
(c) equal outputs on a small random input after copying the Flax variables into the PyTorch model, in eval mode
    (BatchNorm on running statistics, batch 1) and in training mode (batch statistics, batch 2, and the updated
    running means). Biases, BatchNorm scales and statistics are randomized first, so that every copied leaf
    matters.
It also checks `soft_ce_loss` against jaxcolor's "cross_entropy" loss. Runs on one CPU thread.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from flax import traverse_util  # noqa: E402
from torch import nn  # noqa: E402

from jaxcolor import losses, models
from jaxcolor.colorspace import quantize  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402

NUM_BINS = 313
# name -> (benchmark size, size of the numerical check)
SIZES = {"unet": (64, 32), "eccv16": (176, 32), "resnet50_unet": (224, 64)}
RTOL = 1e-4  # max |torch - flax| / max |flax|
# Training mode normalizes with the statistics of few values (eccv16 at 32 px, batch 2: 32 per channel at 1/8,
# many of them zeros from the ReLU before each BatchNorm), which amplifies float32 rounding (~2e-4 there; in
# float64 the two agree to ~3e-6, the precision of Flax's float32 output head).
TRAIN_RTOL = 1e-3


def flax_param_count(params) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params))


def flax_shapes(model, size: int):
  """(variables as ShapeDtypeStructs, output shape) for a batch-1 input of size x size, without computing."""
  l = jax.ShapeDtypeStruct((1, size, size, 1), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), l)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, l)
  return variables, out.shape


def torch_meta_shapes(name: str, num_outputs: int, head: str, size: int):
  """(parameter count, output shape) of the PyTorch model for a batch-1 input, on the "meta" device."""
  with torch.device("meta"):
    model = torch_models.TORCH_MODELS[name](num_outputs, head=head).eval()
    out = model(torch.empty(1, 1, size, size))
  return torch_models.param_count(model), tuple(out.shape)


def randomize(variables, seed: int):
  """Random biases, BatchNorm scales and statistics (Flax initializes them to 0 / 1)."""
  rng = np.random.default_rng(seed)
  flat = traverse_util.flatten_dict(jax.device_get(variables))
  out = {}
  for path, v in flat.items():
    v = np.asarray(v, np.float32)
    leaf = path[-1]
    if leaf in ("bias", "mean"):
      v = 0.1 * rng.standard_normal(v.shape).astype(np.float32)
    elif leaf in ("scale", "var"):
      v = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
    out[path] = v
  return traverse_util.unflatten_dict(out)


def torch_state_from_flax(variables, model: nn.Module) -> dict[str, torch.Tensor]:
  """Flax variables -> PyTorch state dict; the PyTorch submodules carry the Flax path names."""
  state = {}
  for (collection, *path), v in traverse_util.flatten_dict(variables).items():
    module = model.get_submodule(".".join(path[:-1]))
    leaf, v = path[-1], np.asarray(v, np.float32)
    prefix = ".".join(path[:-1]) + "."
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and leaf in ("kernel", "bias"):
      name = "weight" if leaf == "kernel" else "bias"
      if leaf == "kernel" and isinstance(module, nn.ConvTranspose2d):
        v = v[::-1, ::-1].transpose(2, 3, 0, 1)  # (kh, kw, Cin, Cout), unflipped -> (Cin, Cout, kh, kw), flipped
      elif leaf == "kernel":
        v = v.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    elif isinstance(module, nn.BatchNorm2d):
      name = {("params", "scale"): "weight", ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
              ("batch_stats", "var"): "running_var"}[(collection, leaf)]
    else:
      raise TypeError(f"no mapping for {collection}/{'/'.join(path)} onto {type(module).__name__}")
    state[prefix + name] = torch.from_numpy(np.ascontiguousarray(v))
  expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
  missing, extra = expected - set(state), set(state) - expected
  assert not missing and not extra, f"state dict mismatch: missing {sorted(missing)}, extra {sorted(extra)}"
  for k, v in state.items():
    assert tuple(v.shape) == tuple(model.state_dict()[k].shape), f"{k}: {v.shape} vs {model.state_dict()[k].shape}"
  return state


def rel_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  d = float(np.max(np.abs(a - b)))
  return d, d / max(float(np.max(np.abs(b))), 1e-30)


def check_model(name: str) -> None:
  bench_size, test_size = SIZES[name]
  model = models.get_model(name, head="classification", num_bins=NUM_BINS)
  stride = type(model).output_stride
  assert torch_models.TORCH_MODELS[name].output_stride == stride, name

  # (a) parameter counts and (b) output shapes at the benchmark size, from shapes only.
  shapes, flax_out = flax_shapes(model, bench_size)
  n_flax = flax_param_count(shapes["params"])
  n_torch, torch_out = torch_meta_shapes(name, NUM_BINS, "classification", bench_size)
  assert n_flax == n_torch, f"{name}: {n_flax} Flax vs {n_torch} PyTorch parameters"
  flax_nchw = (flax_out[0], flax_out[3], flax_out[1], flax_out[2])
  assert torch_out == flax_nchw, f"{name}: output {torch_out} vs Flax {flax_out} (NHWC)"
  assert torch_out == (1, NUM_BINS, bench_size // stride, bench_size // stride), torch_out
  reg_model = models.get_model(name, head="regression")
  reg_shapes, reg_out = flax_shapes(reg_model, bench_size)
  n_reg_flax = flax_param_count(reg_shapes["params"])
  n_reg_torch, reg_torch_out = torch_meta_shapes(name, 2, "regression", bench_size)
  assert n_reg_flax == n_reg_torch, f"{name} regression: {n_reg_flax} vs {n_reg_torch} parameters"
  assert reg_torch_out == (reg_out[0], reg_out[3], reg_out[1], reg_out[2]), (reg_torch_out, reg_out)

  # (c) outputs with the Flax variables copied over.
  rng = np.random.default_rng(0)
  l1 = rng.uniform(0.0, 100.0, (1, test_size, test_size, 1)).astype(np.float32)
  l2 = rng.uniform(0.0, 100.0, (2, test_size, test_size, 1)).astype(np.float32)
  variables = randomize(model.init(jax.random.key(1), jnp.asarray(l1), train=False), seed=2)
  tmodel = torch_models.TORCH_MODELS[name](NUM_BINS)
  tmodel.load_state_dict(torch_state_from_flax(variables, tmodel), strict=False)

  def to_torch(l: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(l.transpose(0, 3, 1, 2)))

  def to_nchw(y) -> np.ndarray:
    return np.asarray(y).transpose(0, 3, 1, 2)

  flax_eval = to_nchw(model.apply(variables, jnp.asarray(l1), train=False))
  with torch.no_grad():
    torch_eval = tmodel.eval()(to_torch(l1)).numpy()
  assert torch_eval.shape == flax_eval.shape == (1, NUM_BINS, test_size // stride, test_size // stride)
  eval_abs, eval_rel = rel_diff(torch_eval, flax_eval)
  assert eval_rel < RTOL, f"{name} eval: max |diff| {eval_abs:.3g}, relative {eval_rel:.3g}"

  flax_train, updates = model.apply(variables, jnp.asarray(l2), train=True, mutable=["batch_stats"])
  flax_train = to_nchw(flax_train)
  with torch.no_grad():
    torch_train = tmodel.train()(to_torch(l2)).numpy()
  train_abs, train_rel = rel_diff(torch_train, flax_train)
  assert train_rel < TRAIN_RTOL, f"{name} train: max |diff| {train_abs:.3g}, relative {train_rel:.3g}"
  # Running means after one training step (running variances differ by design: PyTorch's use n / (n - 1)).
  tstate = tmodel.state_dict()
  mean_diff = 0.0
  for path, v in traverse_util.flatten_dict(jax.device_get(updates["batch_stats"])).items():
    if path[-1] == "mean":
      key = ".".join(path[:-1]) + ".running_mean"
      mean_diff = max(mean_diff, rel_diff(tstate[key].numpy(), np.asarray(v))[1])
  assert mean_diff < TRAIN_RTOL, f"{name}: running means differ by {mean_diff:.3g} (relative)"

  print(f"{name:14s} params flax {n_flax:,} torch {n_torch:,} (regression head {n_reg_flax:,}); "
        f"output {torch_out} at {bench_size}px; at {test_size}px: eval max|diff| {eval_abs:.2e} "
        f"(rel {eval_rel:.1e}), train max|diff| {train_abs:.2e} (rel {train_rel:.1e}), "
        f"running-mean rel {mean_diff:.1e}", flush=True)


def check_loss() -> None:
  rng = np.random.default_rng(3)
  b, h, w, k = 2, 4, 5, 5
  logits = rng.standard_normal((b, h, w, NUM_BINS)).astype(np.float32) * 3
  idx = rng.integers(0, NUM_BINS, (b, h, w, k))
  wts = rng.uniform(0.0, 1.0, (b, h, w, k)).astype(np.float32)
  wts /= wts.sum(-1, keepdims=True)
  ref = float(losses.cross_entropy(jnp.asarray(logits),
                                   quantize.SoftTarget(jnp.asarray(idx, jnp.int32), jnp.asarray(wts))))
  got = float(torch_models.soft_ce_loss(torch.from_numpy(logits.transpose(0, 3, 1, 2).copy()),
                                        torch.from_numpy(idx.transpose(0, 3, 1, 2).copy()),
                                        torch.from_numpy(wts.transpose(0, 3, 1, 2).copy())))
  assert abs(got - ref) <= 1e-5 * abs(ref), (got, ref)
  print(f"soft_ce_loss   {got:.6f} vs jaxcolor cross_entropy {ref:.6f}")


def main() -> None:
  torch.set_num_threads(1)
  print(f"torch {torch.__version__}, jax {jax.__version__}")
  for name in SIZES:
    check_model(name)
  check_loss()
  print("all checks passed")


if __name__ == "__main__":
  main()
