"""jaxcolor vs the same networks in PyTorch: train-step and inference images/s, timed in one process.

    pip install torch==2.13.0   # benchmark-only; never a dependency of the package
    python benchmarks/vs_pytorch.py [--models unet:64:32,eccv16:176:8,resnet50_unet:224:8] \
        [--dtypes float32,bfloat16] [--infer_size 256 --infer_batch 8] [--steps 5] [--skip train|infer]

Networks: `benchmarks/torch_models.py` mirrors jaxcolor's unet, eccv16 and resnet50_unet layer for layer
(`benchmarks/check_torch_models.py` proves equal parameter counts and outputs). Both sides: classification
head over 313 bins, cross-entropy on 5-bin soft targets, Adam, BatchNorm in training mode, synthetic batches
already on the device. jaxcolor's step also converts uint8 RGB to Lab and soft-encodes the targets inside the
step; PyTorch is handed L and the (indices, weights) targets precomputed, so the comparison favours PyTorch.
Inference: L (B, 1, S, S) -> annealed-mean ab (T = 0.38) upsampled to S x S, eval mode. jaxcolor's train
step and predictor compile with `jaxcolor.cpu.compiler`'s options, as its trainer, evaluator and colorizer do,
and its train step fuses the head with the loss as the trainer does (`head_loss.deferred_head`).

PyTorch variants: eager (NCHW), eager with channels_last, and on a GPU also bfloat16 autocast and
torch.compile. The ratio column divides jaxcolor's images/s by the fastest PyTorch variant of the same dtype.
The header prints GLIBC_TUNABLES: a malloc setting in the environment (README, "Training on a Linux CPU?")
applies to both frameworks alike, as they share the process.
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import torch_models
import train_step
from jaxcolor import models, steps
from jaxcolor.colorspace import quantize
from jaxcolor.cpu import compiler, kernels
from jaxcolor import task as task_lib

import torch

TEMPERATURE = 0.38
K = 5


def _median_time(fn: Callable[[], object], sync: Callable[[], None], repeats: int, warmup: int = 2) -> float:
  for _ in range(warmup):
    fn()
  sync()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    sync()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def jax_inference(name: str, size: int, batch: int, dtype: str, repeats: int) -> float:
  """images/s of jitted L -> ab (the colorize / evaluate path) with random weights."""
  bins = quantize.make_bins()
  model = models.get_model(name, head="classification", num_bins=bins.num_bins, dtype=jnp.dtype(dtype),
                           **kernels.for_model(models.MODELS[name]))
  task = task_lib.ColorTask(head="classification", bins=bins, output_stride=type(model).output_stride,
                            class_weights=np.ones(bins.num_bins, np.float32), temperature=TEMPERATURE)
  l = jax.random.uniform(jax.random.key(0), (batch, size, size, 1), jnp.float32, 0, 100)
  variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(1), l[:1])
  predict = compiler.jit(functools.partial(steps.predict_ab_from_l, model=model, task=task,
                                           decoding="annealed_mean", temperature=TEMPERATURE))
  out = {}
  dt = _median_time(lambda: out.__setitem__("ab", predict(variables, l)),
                    lambda: jax.block_until_ready(out["ab"]), repeats)
  return batch / dt


class TorchBench:
  """One PyTorch model on one device in one layout / precision / compile setting."""

  def __init__(self, name: str, size: int, batch: int, *, device: str, channels_last: bool, bf16: bool,
               compile_: bool):
    self.device, self.bf16 = torch.device(device), bf16
    self.fmt = torch.channels_last if channels_last else torch.contiguous_format
    self.model = torch_models.TORCH_MODELS[name](313).to(self.device, memory_format=self.fmt)
    self.forward = torch.compile(self.model) if compile_ else self.model
    self.size, self.batch = size, batch
    self.centers = torch.as_tensor(np.asarray(quantize.make_bins().centers), dtype=torch.float32,
                                   device=self.device)  # (Q, 2)

  def sync(self) -> None:
    if self.device.type == "cuda":
      torch.cuda.synchronize()

  def _input(self, size: int, batch: int) -> torch.Tensor:
    l = torch.rand(batch, 1, size, size, device=self.device) * 100
    return l.contiguous(memory_format=self.fmt)

  def _autocast(self):
    return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

  def train_images_per_s(self, repeats: int) -> float:
    self.model.train()
    opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
    l = self._input(self.size, self.batch)
    with torch.no_grad(), self._autocast():
      h, w = self.forward(l).shape[-2:]
    idx = torch.randint(0, 313, (self.batch, K, h, w), device=self.device)
    wts = torch.rand(self.batch, K, h, w, device=self.device)
    wts = wts / wts.sum(1, keepdim=True)

    def step():
      opt.zero_grad(set_to_none=True)
      with self._autocast():
        logits = self.forward(l)
      loss = torch_models.soft_ce_loss(logits.float(), idx, wts)
      loss.backward()
      opt.step()
    return self.batch / _median_time(step, self.sync, repeats)

  def inference_images_per_s(self, size: int, batch: int, repeats: int) -> float:
    self.model.eval()
    l = self._input(size, batch)

    @torch.inference_mode()
    def predict():
      with self._autocast():
        logits = self.forward(l).float()
      probs = torch.softmax(logits / TEMPERATURE, dim=1)  # (B, Q, h, w)
      ab = torch.einsum("bqhw,qc->bchw", probs, self.centers)
      return torch.nn.functional.interpolate(ab, size=(size, size), mode="bilinear", align_corners=False)
    return batch / _median_time(predict, self.sync, repeats)


def torch_variants(on_gpu: bool, dtype: str) -> dict[str, dict]:
  bf16 = dtype == "bfloat16"
  variants = {"eager": dict(channels_last=False, bf16=bf16, compile_=False),
              "channels_last": dict(channels_last=True, bf16=bf16, compile_=False)}
  if on_gpu:
    variants["compile"] = dict(channels_last=True, bf16=bf16, compile_=True)
  return variants


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default="unet:64:32,eccv16:176:8,resnet50_unet:224:8")
  p.add_argument("--dtypes", default="float32")
  p.add_argument("--infer_size", type=int, default=256)
  p.add_argument("--infer_batch", type=int, default=8)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--skip", default="", help="'train' or 'infer'")
  a = p.parse_args()
  on_gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
  device = "cuda" if on_gpu else "cpu"
  torch.set_num_threads(os.cpu_count() or 1)
  print(f"jax {jax.__version__} ({jax.devices()[0].device_kind}), torch {torch.__version__} ({device}, "
        f"{torch.get_num_threads()} threads), {train_step.malloc_setting()}")
  print("| what | model | size x batch | dtype | jaxcolor img/s | " +
        " | ".join(f"torch {v}" for v in torch_variants(on_gpu, "float32")) + " | jaxcolor / best torch |")
  print("|---|---|---|---|---|" + "---|" * (len(torch_variants(on_gpu, "float32")) + 1))
  for entry in a.models.split(","):
    name, size, batch = entry.split(":")
    size, batch = int(size), int(batch)
    for dtype in a.dtypes.split(","):
      jobs = []
      if a.skip != "train":
        jobs.append(("train", size, batch, lambda: train_step.measure(name, size, batch, dtype, a.steps)[0],
                     lambda b: b.train_images_per_s(a.steps)))
      if a.skip != "infer":
        jobs.append(("inference", a.infer_size, a.infer_batch,
                     lambda: jax_inference(name, a.infer_size, a.infer_batch, dtype, a.steps),
                     lambda b: b.inference_images_per_s(a.infer_size, a.infer_batch, a.steps)))
      for what, s, b, jax_fn, torch_fn in jobs:
        ours = jax_fn()
        theirs = {v: torch_fn(TorchBench(name, size, batch, device=device, **kw))
                  for v, kw in torch_variants(on_gpu, dtype).items()}
        print(f"| {what} | {name} | {s} x {b} | {dtype} | {ours:.2f} | " +
              " | ".join(f"{x:.2f}" for x in theirs.values()) + f" | {ours / max(theirs.values()):.2f}x |",
              flush=True)


if __name__ == "__main__":
  main()
