"""The 1x1 classification head + cross-entropy: logits then the loss, against `jaxcolor.losses.head_loss` (fused, chunked).

    python benchmarks/head_loss.py [--cases resnet50_unet:8:224:16,unet:32:64:64,eccv16:8:44:128] [--repeats 7]

Each case is name:batch:side:channels, the features entering the 313-bin head of that model's training step
(resnet50_unet at 224, unet at 64, eccv16's 1/4-resolution head at 176). Random features and soft targets
(5 bins). "logits" is what the step does outside `head_loss.deferred_head`: `conv_grad.pointwise_dot` (the
CPU rule for 1x1 convs) plus bias, then `losses.cross_entropy`; "fused" passes a `head_loss.HeadInput`.
Columns: median ms of the loss alone and of loss + gradients (features, kernel, bias), timed in turn after
two warm-up calls each, and the XLA scratch memory (temp bytes) of the gradient program. All compile with
`jaxcolor.cpu.compiler`'s options.
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import losses
from jaxcolor.colorspace import quantize
from jaxcolor.cpu import compiler, conv_grad
from jaxcolor.losses import head_loss

Q, K = 313, 5


def case(batch: int, side: int, channels: int, repeats: int) -> dict[str, tuple[float, float, float]]:
  """{variant: (loss ms, loss + grads ms, scratch MiB of the gradient program)}; the four programs are warmed
  up twice, then timed in turn (round robin), so that drifts of the host speed hit each alike."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, side, side, channels)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(1, 1, channels, Q)) / np.sqrt(channels), jnp.float32)
  bias = jnp.zeros((Q,), jnp.float32)
  target = quantize.SoftTarget(jnp.asarray(rng.integers(0, Q, (batch, side, side, K)), jnp.int32),
                               jnp.asarray(rng.dirichlet(np.ones(K), (batch, side, side)), jnp.float32))
  variants = {
      "logits": lambda x, k, b, t: losses.cross_entropy(conv_grad.pointwise_dot(x, k) + b, t),
      "fused": lambda x, k, b, t: losses.cross_entropy(head_loss.HeadInput(x, k[0, 0], b), t),
  }
  args = (x, kernel, bias, target)
  programs, temp = {}, {}
  for name, f in variants.items():
    programs[(name, "loss")] = compiler.jit(f)
    programs[(name, "grads")] = compiler.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))
    temp[name] = programs[(name, "grads")].lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20
  times: dict = {key: [] for key in programs}
  for key, fn in programs.items():
    for _ in range(2):
      jax.block_until_ready(fn(*args))
  for _ in range(repeats):
    for key, fn in programs.items():
      t = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[key].append(1e3 * (time.perf_counter() - t))
  med = {key: statistics.median(v) for key, v in times.items()}
  return {name: (med[(name, "loss")], med[(name, "grads")], temp[name]) for name in variants}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--cases", default="resnet50_unet:8:224:16,unet:32:64:64,eccv16:8:44:128")
  p.add_argument("--repeats", type=int, default=7)
  args = p.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), "
        f"CHUNK_ROWS {head_loss.CHUNK_ROWS}")
  print("| case | features | logits: loss / loss + grads ms | scratch MiB | fused: loss / loss + grads ms | "
        "scratch MiB | speed-up (grads) |")
  print("|---|---|---|---|---|---|---|")
  for entry in args.cases.split(","):
    name, batch, side, channels = entry.split(":")
    r = case(int(batch), int(side), int(channels), args.repeats)
    (pl, pg, pt), (fl, fg, ft) = r["logits"], r["fused"]
    print(f"| {name} | {batch}x{side}x{side}x{channels} | {pl:.0f} / {pg:.0f} | {pt:.0f} | {fl:.0f} / {fg:.0f} | "
          f"{ft:.0f} | {pg / fg:.2f}x |", flush=True)


if __name__ == "__main__":
  main()
