"""XLA compiler options for jaxcolor's compiled steps, per backend, and `jit` that applies them.

XLA:CPU (jaxlib 0.10) hands convolutions, reductions and some dots to YNNPACK by default. For the shapes of
our models YNNPACK's convolutions measured far slower than XLA's own (Eigen) convolutions on the 2-core CPU
(`python benchmarks/conv_grad.py --xla default` vs `--xla jaxcolor`; benchmarks/BENCHMARKS.md, "YNNPACK"):
the kernel gradient of a 3x3 64->128 conv on 8x88x88 484 ms against 74-87 ms, and the 1x1 16->313 classification head
at 8x224x224 405 / 434 / 1,680 ms (forward / dX / dW) against 208 / 49 / 308 ms. Whole training steps: unet
(64x64, batch 32) 2.7 -> 7.7 img/s, resnet50_unet (224, batch 8) 0.59 -> 1.04 img/s. So on CPU the steps
compile with YNNPACK fusion kept for reductions only (`CPU_OPTIONS`), which timed best of the lists tried
(none, dots only, dots + reductions + elementwise, reductions only).

Other backends get no options, nor does CPU with `JAXCOLOR_COMPILER_OPTIONS=none` in the environment (XLA's
defaults: for a host where YNNPACK wins, and to run the tests under both). `jax.pmap` takes no compiler options: a CPU pmap run gets the same effect from
the environment, `XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=reduce` (`CPU_XLA_FLAG`).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax

CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}
CPU_XLA_FLAG = "--xla_cpu_experimental_ynn_fusion_type=reduce"
OPTIONS_ENV = "JAXCOLOR_COMPILER_OPTIONS"  # "none": XLA's defaults on CPU too


@functools.cache
def _supported(backend: str) -> bool:
  """Whether this XLA knows CPU_OPTIONS (an XLA without the option would refuse every compile)."""
  try:
    one = jax.device_put(1.0, jax.local_devices(backend=backend)[0])
    jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(one).compile()
  except jax.errors.JaxRuntimeError:
    return False
  return True


def options(backend: str | None = None) -> dict[str, str] | None:
  """The compiler options jaxcolor uses on `backend` (default: JAX's default backend); None for none."""
  backend = backend or jax.default_backend()
  if backend != "cpu" or os.environ.get(OPTIONS_ENV, "") == "none" or not _supported(backend):
    return None
  return dict(CPU_OPTIONS)


def jit(fun: Callable[..., Any], **kwargs: Any) -> Any:
  """`jax.jit(fun, **kwargs)` with `options()` as its compiler options."""
  return jax.jit(fun, compiler_options=options(), **kwargs)
