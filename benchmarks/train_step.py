"""Train-step throughput on synthetic on-device batches (no TensorFlow needed), and achieved FLOP/s.

    python benchmarks/train_step.py [--models eccv16:176:8,unet:64:32,resnet50_unet:224:8]
        [--dtypes float32,bfloat16] [--patches_dw on,off] [--xla jaxcolor,default] [--fused_head on,off]
        [--steps 3]

Each entry is model:image_size:batch. Classification head (313 bins, cross-entropy, Adam), one device. FLOPs
per step come from XLA's cost analysis of the step ("executed"), and of the same step traced without
jaxcolor's conv rewrites ("direct conv": the FLOPs of the textbook convolutions, which Winograd undercuts);
images/s is the median over --steps timed steps after one warm-up; the variants of a model (each
combination of the options given) are compiled first and then timed in turn, one step each, round robin.
`--patches_dw off` turns jaxcolor's CPU forms off (`conv_grad.set_cpu_paths`; the model is then built without the
CPU kernels of `jaxcolor.cpu.kernels`: patches dW, phases dX, Winograd, 1x1 convs as matmuls, ...); `--xla
default` compiles without jaxcolor's compiler options (`jaxcolor.cpu.compiler`: on CPU, no YNNPACK convs);
`--fused_head off` forms the logits before the loss instead of the trainer's fused head + loss
(`jaxcolor.losses.head_loss`). The last column sets the achieved FLOP/s against
the device's dense peak (`peak_gflops`): vendor figures for H100/H200, cores x clock x 32 FP32 FLOP/cycle for
a CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcolor import models, steps
from jaxcolor.colorspace import quantize
from jaxcolor.cpu import compiler, conv_grad, kernels
from jaxcolor.losses import objective
from jaxcolor import task as task_lib


class Step:
  """One compiled train step of a model on a synthetic batch, with its state, for timing."""

  def __init__(self, name: str, size: int, batch: int, dtype: str, xla: str = "jaxcolor", fused_head: bool = True):
    """xla: 'jaxcolor' (its compiler options) or 'default'; fused_head: the head's projection computed with the
    cross-entropy, as the trainer does (jaxcolor.losses.head_loss)."""
    bins = quantize.make_bins()
    model = models.get_model(name, head="classification", num_bins=bins.num_bins, dtype=jnp.dtype(dtype),
                             **kernels.for_model(models.MODELS[name]))  # the CPU kernels, as build_model gives them
    task = task_lib.ColorTask(head="classification", bins=bins, output_stride=type(model).output_stride,
                              class_weights=np.ones(bins.num_bins, np.float32))
    tx = optax.adam(1e-4)
    self.state = jax.jit(functools.partial(steps.init_state, model=model, tx=tx, image_shape=(1, size, size, 3)))(
        steps.make_rng(0))
    fn = functools.partial(steps.train_step, model=model, tx=tx, task=task, loss_fn=dataclasses.replace(objective.single("cross_entropy"), fused_head=fused_head))
    images = jax.random.randint(jax.random.key(1), (batch, size, size, 3), 0, 256).astype(jnp.uint8)
    self.data = {"image": images, "mask": jnp.ones((batch,), bool)}
    self.batch = batch
    first = lambda cost: cost[0] if isinstance(cost, (list, tuple)) else cost
    step = jax.jit(fn, donate_argnums=(0,), compiler_options=compiler.options() if xla == "jaxcolor" else None)
    self.step = step.lower(self.state, self.data).compile()
    self.flops = first(self.step.cost_analysis())["flops"]
    rewrites = conv_grad.set_cpu_paths(False)  # the textbook convolutions' FLOPs: a fresh trace without rewrites
    self.direct_flops = first(jax.jit(lambda s, d: fn(s, d)).lower(self.state, self.data).cost_analysis())["flops"]
    conv_grad.set_cpu_paths(rewrites)
    self.times: list[float] = []
    self.run()  # warm-up

  def run(self) -> float:
    t = time.perf_counter()
    self.state, m = self.step(self.state, self.data)
    jax.block_until_ready(m)
    return time.perf_counter() - t

  def result(self) -> tuple[float, float, float]:
    """(images/s, executed GFLOP/s, direct-conv GFLOP/s) from the median timed step."""
    dt = statistics.median(self.times)
    return self.batch / dt, self.flops / dt / 1e9, self.direct_flops / dt / 1e9


def measure_all(steps_: list[Step], repeats: int) -> None:
  """Times `repeats` steps of each, in turn (round robin), so that host-speed drifts hit all variants alike."""
  for _ in range(repeats):
    for s in steps_:
      s.times.append(s.run())


def measure(name: str, size: int, batch: int, dtype: str, repeats: int, xla: str = "jaxcolor",
            fused_head: bool = True) -> tuple[float, float, float]:
  """(images/s, achieved GFLOP/s, direct-conv GFLOP/s) of one jitted train step. Achieved counts the FLOPs of
  the compiled program; direct-conv those of the same step traced without jaxcolor's conv rewrites (Winograd
  does fewer FLOPs for the same result)."""
  s = Step(name, size, batch, dtype, xla, fused_head)
  measure_all([s], repeats)
  return s.result()


# Dense peak GFLOP/s by device kind and dtype (vendor figures, no sparsity); CPU: see cpu_peak_gflops.
GPU_PEAK_GFLOPS = {"H100": {"float32": 67_000, "bfloat16": 989_000}, "H200": {"float32": 67_000, "bfloat16": 989_000}}


def cpu_peak_gflops() -> float:
  """cores x clock x 32 FP32 FLOP/cycle (two 256-bit FMA units per core: AVX2 Zen 2+ / Skylake)."""
  mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
  return (os.cpu_count() or 1) * (max(mhz) if mhz else 0.0) / 1e3 * 32


def malloc_setting() -> str:
  """The glibc malloc tunables in effect (README, "Training on a Linux CPU?"): they change CPU step times."""
  return f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}"


def peak_gflops(dtype: str) -> float:
  """The device's dense peak for `dtype` (0 if unknown); bfloat16 on a CPU counts as float32 work."""
  kind = jax.devices()[0].device_kind
  if jax.default_backend() == "cpu":
    return cpu_peak_gflops()
  return next((v[dtype] for k, v in GPU_PEAK_GFLOPS.items() if k in kind), 0.0)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default="eccv16:176:8,unet:64:32,resnet50_unet:224:8")
  p.add_argument("--dtypes", default="float32")
  p.add_argument("--patches_dw", default="on")
  p.add_argument("--xla", default="jaxcolor", help="jaxcolor (its compiler options) and/or default (XLA's)")
  p.add_argument("--fused_head", default="on", help="on (the trainer's fused head + loss) and/or off")
  p.add_argument("--steps", type=int, default=3)
  args = p.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), {malloc_setting()}")
  print("| model | size | batch | dtype | conv rewrites | XLA options | fused head | img/s | GFLOP/s executed | "
        "% of peak | GFLOP/s direct conv |")
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  for entry in args.models.split(","):
    name, size, batch = entry.split(":")
    for dtype in args.dtypes.split(","):
      variants = list(itertools.product(args.patches_dw.split(","), args.xla.split(","), args.fused_head.split(",")))
      built = []
      for patches, xla, fused in variants:  # built and traced under its own switch
        conv_grad.set_cpu_paths(patches == "on")
        built.append(Step(name, int(size), int(batch), dtype, xla, fused == "on"))
      conv_grad.set_cpu_paths(True)
      measure_all(built, args.steps)
      peak = peak_gflops(dtype)
      for (patches, xla, fused), s in zip(variants, built):
        ips, gflops, direct = s.result()
        share = f"{100 * gflops / peak:.0f}% of {peak:,.0f}" if peak else "?"
        print(f"| {name} | {size} | {batch} | {dtype} | {patches} | {xla} | {fused} | {ips:.2f} | {gflops:.1f} | "
              f"{share} | {direct:.1f} |", flush=True)


if __name__ == "__main__":
  main()
