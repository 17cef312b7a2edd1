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

_NETNS_ENV = "JAXCOLOR_TEST_NETWORK"  # "host": keep the host network; set to the outcome by the first process


def pytest_configure(config):
  """The suite needs no network (gs:// tests talk to a local emulator): where the platform allows, the test
  session moves into a network namespace with only loopback before anything starts, so no test can reach a
  real endpoint. xdist workers and subprocesses inherit it."""
  if os.environ.get(_NETNS_ENV):
    return
  import gcs_emulator
  os.environ[_NETNS_ENV] = gcs_emulator.isolate_network()


def pytest_report_header(config):
  return f"network: {os.environ.get(_NETNS_ENV)}"

# The data root of the registered photo sets (tiny_imagenet_64, photos_256, kodak24, mcmaster): $JAXCOLOR_DATA when
# set, else the shared photos beside the repository (../shared/data).
if not os.environ.get("JAXCOLOR_DATA"):
  os.environ["JAXCOLOR_DATA"] = str(pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data")
SHARED_DATA = pathlib.Path(os.environ["JAXCOLOR_DATA"])


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """Root of the real photos ($JAXCOLOR_DATA, default ../shared/data); tests that need it skip when absent."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"real photos not found at {SHARED_DATA}")
  return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory) -> pathlib.Path:
  """A run directory as training leaves it (config.json, bins, prior, one checkpoint), from random weights.

  A tiny U-Net classifier; built directly rather than by `train.train_and_evaluate` (which needs a TFDS build),
  with the same layout, which test_train checks training writes.
  """
  from configs import unet_cls
  from run_helpers import write_untrained_run

  c = unet_cls.get_config("local")
  c.model_kwargs.features = (8, 16)
  c.image_size = 16
  wd = tmp_path_factory.mktemp("run")
  write_untrained_run(c, wd)
  return wd
