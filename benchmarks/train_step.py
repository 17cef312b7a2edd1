"""Train-step throughput on synthetic on-device batches (no TensorFlow needed), and achieved FLOP/s.

    python benchmarks/train_step.py [--models eccv16:176:8,unet:64:32,resnet50_unet:224:8]
        [--dtypes float32,bfloat16] [--patches_dw on,off] [--steps 3]

Each entry is model:image_size:batch. Classification head (313 bins, cross-entropy, Adam), one device. FLOPs
per step come from XLA's cost analysis of the compiled step; images/s is the median over --steps timed steps
after one warm-up. `--patches_dw off` measures XLA's own kernel gradients (see jaxcolor.conv_grad).
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcolor import conv_grad, losses, models, quantize, steps
from jaxcolor import task as task_lib


def measure(name: str, size: int, batch: int, dtype: str, repeats: int) -> tuple[float, float]:
  """(images/s, achieved GFLOP/s) of one jitted train step."""
  bins = quantize.make_bins()
  model = models.get_model(name, head="classification", num_bins=bins.num_bins, dtype=jnp.dtype(dtype))
  task = task_lib.ColorTask(head="classification", bins=bins, output_stride=type(model).output_stride,
                            class_weights=np.ones(bins.num_bins, np.float32))
  tx = optax.adam(1e-4)
  state = jax.jit(functools.partial(steps.init_state, model=model, tx=tx, image_shape=(1, size, size, 3)))(
      steps.make_rng(0))
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=task,
                                   loss_fn=losses.get_loss("cross_entropy")), donate_argnums=(0,))
  images = jax.random.randint(jax.random.key(1), (batch, size, size, 3), 0, 256).astype(jnp.uint8)
  data = {"image": images, "mask": jnp.ones((batch,), bool)}
  compiled = step.lower(state, data).compile()
  cost = compiled.cost_analysis()
  flops = (cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"]
  state, m = step(state, data)
  jax.block_until_ready(m)
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    state, m = step(state, data)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  dt = statistics.median(times)
  return batch / dt, flops / dt / 1e9


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--models", default="eccv16:176:8,unet:64:32,resnet50_unet:224:8")
  p.add_argument("--dtypes", default="float32")
  p.add_argument("--patches_dw", default="on,off")
  p.add_argument("--steps", type=int, default=3)
  args = p.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()})")
  print("| model | size | batch | dtype | patches dW | img/s | GFLOP/s |")
  print("|---|---|---|---|---|---|---|")
  for entry in args.models.split(","):
    name, size, batch = entry.split(":")
    for dtype in args.dtypes.split(","):
      for patches in args.patches_dw.split(","):
        conv_grad.set_patches_dw(patches == "on")
        ips, gflops = measure(name, int(size), int(batch), dtype, args.steps)
        print(f"| {name} | {size} | {batch} | {dtype} | {patches} | {ips:.2f} | {gflops:.1f} |", flush=True)


if __name__ == "__main__":
  main()
