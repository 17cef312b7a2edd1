"""Conv forward / dX / dW of XLA vs jaxcolor.cpu.conv_grad (patches dW, phases dX) and jaxcolor.cpu.winograd, per layer.

    python benchmarks/conv_grad.py [--batch 8 --size 176 --repeats 5 --dtype float32 --max-patch-mib 64]

3x3 convs of Zhang's eccv16 at --size (176 = its training crops), batch --batch, plus the benchmarks issue's
64->128 on 8x88x88 (= block2 conv0 at 176). Each timing is the median wall time of a jitted call after
compilation; GFLOP/s counts 2*N*H'*W'*kh*kw*Cin*Cout for each of forward, dX and dW. "dW XLA" is the kernel
cotangent of jax.vjp of lax.conv_general_dilated; "dW patches" is `conv_grad.patches_dw` (patches^T @ dY,
float32 accumulation, batch-chunked to --max-patch-mib of patches). The last column says which dW is faster
and what `use_patches_dw` picks.

The Winograd columns time `jaxcolor.cpu.winograd.conv3x3` (F(2x2, 3x3)) for stride-1 3x3 rows; their GFLOP/s
count the direct conv's FLOPs (2x for dX + dW), so they can exceed the machine's peak. Then sections of
forward and forward + both gradients, by variant: transposed convs (XLA, zero-insertion, phases), 1x1 convs
(XLA, `conv_grad.pointwise_dot`), and unet's 3x3 convs with XLA's kernel gradient or `shifted_dw` (9 matmuls
over shifted rows of the padded input, which avoid the transposed copies XLA:CPU makes for its own). `--only`
picks rows by name. Figures, with the machine and date: benchmarks/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcolor.cpu import compiler, conv_grad, winograd

DIMS = ("NHWC", "HWIO", "NHWC")


def eccv16_layers(size: int) -> list[tuple[str, int, int, int, int, int]]:
  """(name, input side, Cin, Cout, stride, dilation) of eccv16's 3x3 convs (one row per distinct shape)."""
  s1, s2, s4, s8 = size, size // 2, size // 4, size // 8
  return [
      ("b1c0 1->64", s1, 1, 64, 1, 1),
      ("64->64 s1", s1, 64, 64, 1, 1),
      ("b1c1 64->64 s2", s1, 64, 64, 2, 1),
      ("b2c0 64->128", s2, 64, 128, 1, 1),
      ("b2c1 128->128 s2", s2, 128, 128, 2, 1),
      ("128->128 s1", s2, 128, 128, 1, 1),
      ("b3c0 128->256", s4, 128, 256, 1, 1),
      ("b3c1,b8 256->256", s4, 256, 256, 1, 1),
      ("b3c2 256->256 s2", s4, 256, 256, 2, 1),
      ("b4c0 256->512", s8, 256, 512, 1, 1),
      ("b4,b7 512->512", s8, 512, 512, 1, 1),
      ("b5,b6 512->512 d2", s8, 512, 512, 1, 2),
  ]


# First convs of the other benchmark models, whose inputs have 1 or 3 channels:
# (name, batch, input side, Cin, Cout, kernel, stride).
FIRST_LAYERS = [("unet c0 1->64", 32, 64, 1, 64, 3, 1), ("vgg16 c0 3->64", 8, 224, 3, 64, 3, 1),
                ("resnet50 stem 3->64 7x7 s2", 8, 224, 3, 64, 7, 2)]
# Transposed convs (stride 2, SAME): (name, batch, input side, Cin, Cout, kernel).
DECONVS = [("eccv16 b8 4x4 512->256", 8, 22, 512, 256, 4), ("resnet50_unet up0 3x3 2048->256", 8, 7, 2048, 256, 3),
           ("resnet50_unet up3 3x3 64->32", 8, 56, 64, 32, 3), ("resnet50_unet up4 3x3 32->16", 8, 112, 32, 16, 3)]
# 1x1 convs (heads and ResNet-50's bottlenecks): (name, batch, input side, Cin, Cout, stride).
POINTWISE = [("1x1 resnet50_unet head 16->313", 8, 224, 16, 313, 1), ("1x1 unet head 64->313", 32, 64, 64, 313, 1),
             ("1x1 eccv16 head 128->313", 8, 44, 128, 313, 1), ("1x1 resnet50 conv2 64->256", 8, 56, 64, 256, 1),
             ("1x1 resnet50 conv2 256->64", 8, 56, 256, 64, 1), ("1x1 resnet50 conv3 512->128", 8, 28, 512, 128, 1),
             ("1x1 resnet50 conv4 1024->256", 8, 14, 1024, 256, 1),
             ("1x1 resnet50 conv5 512->2048", 8, 7, 512, 2048, 1),
             ("1x1 resnet50 shortcut 256->512 s2", 8, 56, 256, 512, 2)]
# unet's 3x3 stride-1 convs below 256 channels (no Winograd), batch 32 at 64x64: (name, batch, input side,
# Cin, Cout, unused).
UNET_3X3 = [("unet down0c1 3x3 64->64", 32, 64, 64, 64, 0), ("unet up2c0 3x3 128->64", 32, 64, 128, 64, 0),
            ("unet down1c1 3x3 128->128", 32, 32, 128, 128, 0), ("unet up1c0 3x3 256->128", 32, 32, 256, 128, 0)]
XLA_OPTIONS: list[dict | None] = [None]  # set by --xla


def timeit(fn, *args, repeats: int) -> float:
  jitted = jax.jit(fn, compiler_options=XLA_OPTIONS[0])
  jax.block_until_ready(jitted(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(jitted(*args))
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def bench_layer(batch, side, cin, cout, stride, dil, dtype, repeats, max_patch_bytes, k=3):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), dtype)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin), dtype)
  strides, rhs_dil = (stride, stride), (dil, dil)
  pads = ((dil * (k - 1) // 2,) * 2,) * 2  # eccv16's Caffe-style padding (3x3); "same" for odd k

  def fwd(x, w):
    return lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=rhs_dil, dimension_numbers=DIMS)

  g = jnp.asarray(rng.normal(size=jax.eval_shape(fwd, x, w).shape), dtype)
  flops = 2 * g.shape[0] * g.shape[1] * g.shape[2] * k * k * cin * cout

  def dx(x, w, g):
    return jax.vjp(lambda x_: fwd(x_, w), x)[1](g)[0]

  def dw_xla(x, w, g):
    return jax.vjp(lambda w_: fwd(x, w_), w)[1](g)[0]

  def dw_patches(x, w, g):
    return conv_grad.patches_dw(x, g, (k, k), strides, pads, rhs_dil, max_patch_bytes=max_patch_bytes).astype(w.dtype)

  def dx_phases(x, w, g):
    return conv_grad.phases_dx(g, w, x.shape, strides, pads)

  def wino(x, w):
    return winograd.conv3x3(x, w, pads, dil)

  def wino_grads(x, w, g):
    return jax.vjp(wino, x, w)[1](g)

  phased, wino_ok = stride > 1 and dil == 1, stride == 1 and k == 3 and cin > 3
  nan = float("nan")
  times = {"fwd": timeit(fwd, x, w, repeats=repeats), "dX": timeit(dx, x, w, g, repeats=repeats),
           "dX phases": timeit(dx_phases, x, w, g, repeats=repeats) if phased else nan,
           "dW XLA": timeit(dw_xla, x, w, g, repeats=repeats),
           "dW patches": timeit(dw_patches, x, w, g, repeats=repeats),
           "fwd Winograd": timeit(wino, x, w, repeats=repeats) if wino_ok else nan,
           "dX+dW Winograd": timeit(wino_grads, x, w, g, repeats=repeats) if wino_ok else nan}
  return flops, times, conv_grad.use_patches_dw(x.shape, w.shape, strides, rhs_dil)


def time_variants(variants, x, w, g, repeats) -> dict[str, tuple[float, float]]:
  """{name: (s forward, s forward + dX + dW)} of each variant f(x, w); the forward output is returned with
  the gradients, or XLA would drop it as dead code."""
  out = {}
  for name, f in variants.items():
    full = lambda x, w, g, f=f: (lambda y, vjp: (y, vjp(g)))(*jax.vjp(f, x, w))
    out[name] = (timeit(f, x, w, repeats=repeats), timeit(full, x, w, g, repeats=repeats))
  return out


def bench_deconv(batch, side, cin, cout, k, repeats):
  """ms of forward and forward + both gradients: lax.conv_transpose (XLA), the same as a conv over the
  zero-inserted input with the patches dW (jaxcolor before), and `conv_grad.conv_transpose` (phases)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
  pad = conv_grad._transpose_pads(k, 2, "SAME")

  def zero_inserted(x, w):
    xd = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (0, 0, 1), (0, 0, 1), (0, 0, 0)))
    return conv_grad.conv2d(xd, w, 1, (pad, pad), 1)

  variants = {"XLA": lambda x, w: lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=DIMS),
              "zero-insert + patches dW": zero_inserted,
              "phases": lambda x, w: conv_grad.conv_transpose(x, w, (2, 2), "SAME")}
  g = jnp.asarray(rng.normal(size=(batch, 2 * side, 2 * side, cout)), jnp.float32)
  return time_variants(variants, x, w, g, repeats)


def bench_pointwise(batch, side, cin, cout, stride, repeats):
  """ms of forward and forward + dX + dW of a 1x1 conv: XLA's convolution and `conv_grad.pointwise_dot`."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(1, 1, cin, cout)) / np.sqrt(cin), jnp.float32)
  variants = {"XLA": lambda x, w: lax.conv_general_dilated(x, w, (stride, stride), "VALID", dimension_numbers=DIMS),
              "matmul": lambda x, w: conv_grad.pointwise_dot(x, w, (stride, stride))}
  g = jnp.asarray(rng.normal(size=jax.eval_shape(variants["XLA"], x, w).shape), jnp.float32)
  return time_variants(variants, x, w, g, repeats)


def shifted_dw(x: jax.Array, g: jax.Array) -> jax.Array:
  """dW (3, 3, Cin, Cout) of a 3x3 stride-1 SAME conv as 9 matmuls over the flattened padded input, without
  XLA's transposed copies: with x padded to (N, H+2, W+2, Cin) and flattened to rows, and g zero-padded on
  the bottom and right to the same rows, tap (a, b) is rows shifted by a*(W+2)+b of x, transposed, @ g."""
  n, h, w, c = x.shape
  hp, wp, cout = h + 2, w + 2, g.shape[-1]
  rows = n * hp * wp
  xf = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(rows, c)
  xf = jnp.pad(xf, ((0, 2 * wp + 2), (0, 0)))
  gf = jnp.pad(g, ((0, 0), (0, 2), (0, 2), (0, 0))).reshape(rows, cout)
  taps = [lax.dot_general(lax.slice_in_dim(xf, a * wp + b, a * wp + b + rows), gf, (((0,), (0,)), ((), ())))
          for a in range(3) for b in range(3)]
  return jnp.stack(taps).reshape(3, 3, c, cout)


def bench_shifted_dw(batch, side, cin, cout, _, repeats):
  """ms of forward and forward + dX + dW of a 3x3 stride-1 SAME conv: XLA's, and the same with `shifted_dw`
  as its kernel gradient."""
  conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DIMS)

  @jax.custom_vjp
  def shifted(x, w):
    return conv(x, w)

  def bwd(res, g):
    x, w = res
    return jax.vjp(lambda x_: conv(x_, w), x)[1](g)[0], shifted_dw(x, g)

  shifted.defvjp(lambda x, w: (conv(x, w), (x, w)), bwd)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) / np.sqrt(9 * cin), jnp.float32)
  g = jnp.asarray(rng.normal(size=(batch, side, side, cout)), jnp.float32)
  want = jax.vjp(lambda w_: conv(x, w_), w)[1](g)[0]
  err = float(jnp.max(jnp.abs(shifted_dw(x, g) - want)) / jnp.max(jnp.abs(want)))
  if err > 1e-4:
    raise AssertionError(f"shifted_dw differs from XLA's kernel gradient by {err:.1e} (relative)")
  return time_variants({"XLA": conv, "shifted dW": shifted}, x, w, g, repeats)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--size", type=int, default=176)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--max-patch-mib", type=float, default=conv_grad.DEFAULT_MAX_PATCH_BYTES / 2**20)
  parser.add_argument("--only", default=None, help="substring of the layer names to run")
  parser.add_argument("--xla", default="jaxcolor", choices=["jaxcolor", "default"],
                      help="compile with jaxcolor.cpu.compiler's options or XLA's defaults (YNNPACK convs on CPU)")
  args = parser.parse_args()
  XLA_OPTIONS[0] = compiler.options() if args.xla == "jaxcolor" else None
  dtype = jnp.dtype(args.dtype)
  print(f"{jax.devices()[0].platform} x{jax.device_count()}, batch {args.batch}, size {args.size}, {args.dtype}, "
        f"max patches {args.max_patch_mib:g} MiB, XLA options {XLA_OPTIONS[0]}; ms (GFLOP/s)")
  cols = ["fwd", "dX", "dX phases", "dW XLA", "dW patches", "fwd Winograd", "dX+dW Winograd"]
  print(f"{'layer':27s} {'in':>14s} " + " ".join(f"{c:>16s}" for c in cols) + "  faster dW  rule")
  rows = [(name, args.batch, side, cin, cout, 3, stride, dil) for name, side, cin, cout, stride, dil
          in eccv16_layers(args.size)] + [r + (1,) for r in FIRST_LAYERS]
  for name, batch, side, cin, cout, k, stride, dil in rows:
    if args.only and args.only not in name:
      continue
    flops, times, rule = bench_layer(batch, side, cin, cout, stride, dil, dtype, args.repeats,
                                     int(args.max_patch_mib * 2**20), k=k)
    cells = " ".join(f"{1e3 * times[c]:8.1f} ({(2 if '+' in c else 1) * flops / times[c] / 1e9:5.0f})" for c in cols)
    ratio = times["dW XLA"] / times["dW patches"]
    best = f"patches {ratio:.1f}x" if ratio > 1 else f"XLA {1 / ratio:.1f}x"
    print(f"{name:27s} {f'{batch}x{side}x{side}x{cin}':>14s} {cells}  {best:12s} {'patches' if rule else 'XLA'}",
          flush=True)
  sections = [("transposed conv, stride 2, SAME", DECONVS, bench_deconv),
              ("1x1 conv, unpadded", POINTWISE, bench_pointwise),
              ("3x3 conv, stride 1: XLA's dW or 9 shifted matmuls", UNET_3X3, bench_shifted_dw)]
  for title, layers, bench in sections:
    print(f"\n{title}: ms forward / forward + dX + dW")
    for name, batch, side, cin, cout, arg in layers:  # arg: kernel size (DECONVS), stride (POINTWISE)
      if args.only and args.only not in name:
        continue
      res = bench(batch, side, cin, cout, arg, args.repeats)
      cells = "  ".join(f"{v}: {1e3 * f:.0f} / {1e3 * fb:.0f}" for v, (f, fb) in res.items())
      print(f"{name:34s} {f'{batch}x{side}x{side}x{cin}':>14s}  {cells}", flush=True)


if __name__ == "__main__":
  main()
