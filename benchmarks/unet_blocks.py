"""U-Net's 2x2 blocks: flax's modules vs jaxcolor's, forward and gradient times at the benchmark's shapes.

    python benchmarks/unet_blocks.py [--batch 32] [--repeats 5]

The default unet (features 64-512) at 64x64 pools three times and upsamples three times with 2x2 stride-2
transposed convs. Rows: `nn.max_pool` vs `jaxcolor.cpu.kernels.max_pool` (gradient through the pooled sum of
squares) and `nn.ConvTranspose` vs `conv_grad.ConvTranspose` (`conv_grad.deconv2x2`: forward, kernel gradient dW,
input gradient dX), median ms of jitted calls.
"""
from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp

from conv_grad import timeit  # benchmarks/conv_grad.py: median seconds of a jitted call
from jaxcolor.cpu import conv_grad, kernels


def ms(fn, *args, repeats: int) -> float:
  return timeit(fn, *args, repeats=repeats) * 1e3


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--repeats", type=int, default=5)
  a = p.parse_args()
  key = jax.random.key(0)
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, batch {a.batch}, ms")
  print("| block | input | flax grad | jaxcolor grad |")
  print("|---|---|---|---|")
  for size, c in ((64, 64), (32, 128), (16, 256)):
    x = jax.random.normal(key, (a.batch, size, size, c))
    flax_pool = lambda x: jnp.sum(nn.max_pool(x, (2, 2), strides=(2, 2)) ** 2)
    ours_pool = lambda x: jnp.sum(kernels.max_pool(x, (2, 2), strides=(2, 2)) ** 2)
    print(f"| max pool 2x2 | {size}x{size}x{c} | {ms(jax.grad(flax_pool), x, repeats=a.repeats):.1f} | "
          f"{ms(jax.grad(ours_pool), x, repeats=a.repeats):.1f} |", flush=True)
  print("\n| block | input -> output | module | forward | dW | dX |")
  print("|---|---|---|---|---|---|")
  for cin, cout, size in ((512, 256, 8), (256, 128, 16), (128, 64, 32)):
    x = jax.random.normal(key, (a.batch, size, size, cin))
    for name, module in (("flax nn.ConvTranspose", nn.ConvTranspose(cout, (2, 2), strides=(2, 2), padding="VALID")),
                         ("jaxcolor ConvTranspose", conv_grad.ConvTranspose(cout, (2, 2), strides=(2, 2),
                                                                             padding="VALID"))):
      variables = module.init(key, x)
      loss = lambda v, x, m=module: jnp.sum(m.apply(v, x) ** 2)
      print(f"| deconv 2x2 | {size}x{size}x{cin} -> {2 * size}x{2 * size}x{cout} | {name} | "
            f"{ms(loss, variables, x, repeats=a.repeats):.1f} | {ms(jax.grad(loss), variables, x, repeats=a.repeats):.1f} | "
            f"{ms(jax.grad(loss, 1), variables, x, repeats=a.repeats):.1f} |", flush=True)


if __name__ == "__main__":
  main()
