"""Test setup: 8 host CPU devices for every test, so sharded and pmapped code runs on a laptop.

The flag must be set before JAX initializes its backend, hence at import time of conftest.
"""
import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib

import pytest

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """Root of the real photos in ../shared/data; tests that need it skip when it is absent."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"real photos not found at {SHARED_DATA}")
  return SHARED_DATA
