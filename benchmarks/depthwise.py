"""Depthwise convolutions on XLA:CPU: XLA's grouped conv against jaxcolor's shifted sums (jaxcolor.cpu.depthwise),
per layer of EfficientNet-Lite0 and for the whole encoder, forward and forward + gradients.

    python benchmarks/depthwise.py [--size 128] [--batch 32] [--repeats 3]

Layers: the depthwise convs of Lite0 at the given input size (one per distinct shape). "whole encoder": Lite0's
stage features (include_top=False), images/s of a forward pass and of a forward + backward pass (the gradient of
the sum of squares of every stage feature), with jaxcolor's CPU forms on and off (`conv_grad.set_cpu_paths`).
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
from jax import lax

from jaxcolor.cpu import compiler, conv_grad, depthwise
from jaxcolor.models import efficientnet_lite as E


def timed(fn, *args, repeats: int) -> float:
  """Median seconds of `repeats` calls after one warm-up (compile)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def layer_shapes(size: int, batch: int) -> list[tuple[tuple[int, int, int, int], int, int]]:
  """(input shape, kernel, stride) of each distinct depthwise conv of Lite0 at `size`."""
  out, hw, cin = [], size // 2, E.STEM_FEATURES
  for s in E.stage_plan(1.0, 1.0):
    for r in range(s.repeats):
      c = cin * s.expand
      stride = s.stride if r == 0 else 1
      shape = ((batch, hw, hw, c), s.kernel, stride)
      if shape not in out:
        out.append(shape)
      hw, cin = -(-hw // stride), s.features
  return out


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--size", type=int, default=128)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--repeats", type=int, default=3)
  a = p.parse_args()
  print(f"jax {jax.__version__} on {jax.default_backend()}; Lite0 at {a.size} px, batch {a.batch}; ms per call")
  print("| input (B, H, W, C) | k | stride | XLA fwd | XLA fwd+grads | shifted fwd | shifted fwd+grads |")
  print("|---|---|---|---|---|---|---|")
  for shape, k, s in layer_shapes(a.size, a.batch):
    x = jax.random.normal(jax.random.key(0), shape)
    w = jax.random.normal(jax.random.key(1), (k, k, 1, shape[-1]))
    pads = tuple(lax.padtype_to_pads(shape[1:3], (k, k), (s, s), "SAME"))
    xla = lambda x_, w_: lax.conv_general_dilated(x_, w_, (s, s), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                                  feature_group_count=shape[-1])
    ours = lambda x_, w_: depthwise.depthwise_conv(x_, w_, (s, s), pads)
    row = []
    for f in (xla, ours):
      row.append(timed(compiler.jit(f), x, w, repeats=a.repeats))
      row.append(timed(compiler.jit(jax.grad(lambda x_, w_: jnp.sum(f(x_, w_) ** 2), (0, 1))), x, w,
                       repeats=a.repeats))
    print(f"| {shape} | {k} | {s} | " + " | ".join(f"{1e3 * t:.1f}" for t in row) + " |", flush=True)

  enc = E.EfficientNetLite("lite0", conv=conv_grad.Conv)  # its CPU forms follow the switch below, at trace time
  x = jax.random.normal(jax.random.key(2), (a.batch, a.size, a.size, 3))
  variables = jax.jit(lambda: enc.init(jax.random.key(0), x[:1]))()

  def loss(params, x_):
    feats, _ = enc.apply({"params": params, "batch_stats": variables["batch_stats"]}, x_, train=True,
                         mutable=["batch_stats"])
    return sum(jnp.mean(f ** 2) for f in feats.values())

  print("\n| whole Lite0 encoder | forward img/s | forward + backward img/s |\n|---|---|---|")
  for on in (False, True):
    previous = conv_grad.set_cpu_paths(on)
    fwd = compiler.jit(lambda v, x_: enc.apply(v, x_))
    grad = compiler.jit(jax.grad(loss))
    f, g = timed(fwd, variables, x, repeats=a.repeats), timed(grad, variables["params"], x, repeats=a.repeats)
    conv_grad.set_cpu_paths(previous)
    print(f"| {'jaxcolor CPU forms (shifted-sum depthwise)' if on else 'XLA grouped convs'} | {a.batch / f:.1f} | "
          f"{a.batch / g:.1f} |", flush=True)


if __name__ == "__main__":
  main()
