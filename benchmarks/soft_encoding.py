"""Soft encoding + cross-entropy: sparse (jaxcolor) vs dense reference, time and XLA scratch memory.

    python benchmarks/soft_encoding.py [--photos ../shared/data/tiny-imagenet-64/val] [--batch 32 --size 64]
        [--xla jaxcolor|default]

Targets are ab of real photos when --photos is given (else random sRGB colors), logits are random. Time is
the median wall time of jitted calls after compilation; memory is the scratch (temp) bytes XLA allocates
for the compiled function (`compiled.memory_analysis()`), i.e. the peak intermediate memory beyond inputs
and outputs. Both compile with `jaxcolor.cpu.compiler`'s options, as the training step does (`--xla default`:
XLA's own). Issue target: sparse at least 10x faster and 30x smaller than dense. The last line times the
log-sum-exp alone: both versions compute it, so dense time / its time is the most any sparse encoder can gain.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxcolor import losses
from jaxcolor.colorspace import color, quantize
from jaxcolor.cpu import compiler

XLA_OPTIONS: list[dict | None] = [None]  # set by --xla


def load_rgb(photos: str | None, batch: int, size: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  if not photos:
    return rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
  from PIL import Image
  paths = sorted(pathlib.Path(photos).rglob("*.[jJpP][pPnN][eEgG]*"))
  chosen = rng.choice(len(paths), batch, replace=False)
  return np.stack([np.asarray(Image.open(paths[i]).convert("RGB").resize((size, size))) for i in chosen])


def measure(fn, *args, repeats: int = 10) -> tuple[float, float]:
  """(median seconds per call, XLA temp MiB) of fn jitted with the --xla options."""
  jitted = jax.jit(fn, compiler_options=XLA_OPTIONS[0])
  temp = jitted.lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20
  jax.block_until_ready(jitted(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(jitted(*args))
    times.append(time.perf_counter() - t)
  return statistics.median(times), temp


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--photos", default=None, help="folder of photos for real ab targets")
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--xla", default="jaxcolor", choices=["jaxcolor", "default"])
  args = parser.parse_args()
  XLA_OPTIONS[0] = compiler.options() if args.xla == "jaxcolor" else None

  bins = quantize.make_bins()
  ab = jax.jit(lambda x: color.rgb_to_lab(x)[..., 1:])(load_rgb(args.photos, args.batch, args.size))
  logits = jnp.asarray(np.random.default_rng(1).normal(size=ab.shape[:-1] + (bins.num_bins,)), jnp.float32)

  def sparse_ce(ab, logits):
    return losses.cross_entropy(logits, quantize.soft_encode(ab, bins))

  def dense_ce(ab, logits):
    target = quantize.to_dense(quantize.soft_encode_dense(ab, bins), bins.num_bins)  # (B, H, W, Q)
    return -jnp.mean(jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1))

  np.testing.assert_allclose(jax.jit(sparse_ce)(ab, logits), jax.jit(dense_ce)(ab, logits), rtol=1e-5)
  rows = [
      ("encode", measure(lambda a: quantize.soft_encode(a, bins), ab, repeats=args.repeats),
       measure(lambda a: quantize.soft_encode_dense(a, bins), ab, repeats=args.repeats)),
      ("encode + cross-entropy", measure(sparse_ce, ab, logits, repeats=args.repeats),
       measure(dense_ce, ab, logits, repeats=args.repeats)),
  ]
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, batch {args.batch}x{args.size}x{args.size}, "
        f"{bins.num_bins} bins, targets from {'photos ' + args.photos if args.photos else 'random colors'}, "
        f"XLA options {XLA_OPTIONS[0]}")
  print(f"{'':24s} {'sparse ms':>10s} {'dense ms':>10s} {'speedup':>8s} {'sparse MiB':>11s} {'dense MiB':>10s} "
        f"{'smaller':>8s}")
  for name, (ts, ms), (td, md) in rows:
    print(f"{name:24s} {ts * 1e3:10.1f} {td * 1e3:10.1f} {td / ts:7.1f}x {ms:11.2f} {md:10.2f} "
          f"{md / max(ms, 1e-9):7.1f}x")
  # Both versions need the softmax normalizer of every pixel; its time bounds the speedup any encoder can reach.
  normalizer, _ = measure(lambda z: jax.nn.logsumexp(z, axis=-1), logits, repeats=args.repeats)
  _, _, (dense_ce_time, _) = rows[-1]
  print(f"log-sum-exp over the logits alone (paid by both): {normalizer * 1e3:.1f} ms; speedup ceiling with a "
        f"free encoder and gather: {dense_ce_time / normalizer:.1f}x")


if __name__ == "__main__":
  main()
