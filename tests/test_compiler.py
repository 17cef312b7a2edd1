"""compiler: CPU steps compile without YNNPACK convolutions and compute the same values."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxcolor.cpu import compiler

DIMS = ("NHWC", "HWIO", "NHWC")


def conv_loss(x, w):
  return jnp.sum(lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DIMS) ** 2)


def ynn_convolutions(hlo: str) -> int:
  """Number of YNNPACK fusions in compiled HLO text whose fused computation holds a convolution."""
  bodies = dict(re.findall(r"^(%\S+) .*?\{\n(.*?)\n\}", hlo, re.S | re.M))
  called = re.findall(r"calls=(%[\w.-]+), .*__ynn_fusion", hlo)
  return sum(" convolution(" in bodies.get(name, "") for name in called)


def test_cpu_options_keep_convolutions_out_of_ynnpack(monkeypatch):
  monkeypatch.delenv(compiler.OPTIONS_ENV, raising=False)  # the suite may run under XLA's defaults
  assert compiler.options("cpu") == compiler.CPU_OPTIONS
  assert compiler.options("gpu") is None and compiler.options("tpu") is None
  x = jax.random.normal(jax.random.key(0), (4, 32, 32, 64))
  w = jax.random.normal(jax.random.key(1), (3, 3, 64, 64)) / 24
  step = jax.value_and_grad(conv_loss, argnums=(0, 1))
  if not ynn_convolutions(jax.jit(step).lower(x, w).compile().as_text()):
    pytest.skip("this XLA does not hand these convolutions to YNNPACK by default")
  assert ynn_convolutions(compiler.jit(step).lower(x, w).compile().as_text()) == 0
  ours, ref = compiler.jit(step)(x, w), jax.jit(step)(x, w)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.abs(b).max()))  # summation order only


def test_environment_turns_the_options_off(monkeypatch):
  monkeypatch.setenv(compiler.OPTIONS_ENV, "none")
  assert compiler.options("cpu") is None


def test_jit_passes_its_arguments_on():
  f = compiler.jit(lambda x, n: x * n, static_argnums=(1,), donate_argnums=(0,))
  np.testing.assert_array_equal(f(jnp.ones(3), 2), 2 * np.ones(3))
