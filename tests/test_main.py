"""The entry point and the installed package: default run folder, and the commands from outside the repository."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from jaxcolor import main as main_lib

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("arg, want", [
    ("configs/unet_cls.py", "runs/unet_cls"),
    ("configs/unet_cls.py:local", "runs/unet_cls_local"),
    ("/elsewhere/configs/reference_vivid.py", "runs/reference_vivid"),
])
def test_default_workdir_is_named_for_the_config_and_variant(arg, want):
  assert main_lib.default_workdir(arg) == os.path.join(*want.split("/"))


def test_log_keeps_what_a_user_reads():
  import logging
  record = lambda path, level: logging.LogRecord("x", level, path, 1, "msg", (), None)
  quiet, verbose = main_lib._Quiet(False), main_lib._Quiet(True)
  cases = [  # (path, level, shown by default, shown with --verbose)
      ("/site-packages/jaxcolor/train.py", logging.INFO, True, True),  # progress, evaluations
      ("/site-packages/jax/_src/xla_bridge.py", logging.INFO, False, True),  # "Unable to initialize backend 'tpu'"
      ("/site-packages/tensorflow_datasets/core/dataset_builder.py", logging.WARNING, False, True),  # custom config
      ("/site-packages/tensorflow_datasets/core/dataset_builder.py", logging.ERROR, True, True),
      ("/site-packages/clu/metric_writers/logging_writer.py", logging.INFO, False, True),  # our scalars again
      ("/site-packages/orbax/checkpoint/manager.py", logging.INFO, False, False),
      ("/site-packages/orbax/checkpoint/manager.py", logging.WARNING, True, True),
      ("/site-packages/jax/_src/something.py", logging.WARNING, True, True),
  ]
  for path, level, default, with_verbose in cases:
    assert quiet.filter(record(path, level)) is default, path
    assert verbose.filter(record(path, level)) is with_verbose, path


def _run(args: list[str], cwd: pathlib.Path, env: dict[str, str], timeout: int = 600) -> str:
  proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{out[-4000:]}"
  return out


@pytest.mark.slow
def test_installed_without_editable_runs_from_another_folder(tmp_path):
  """The wheel installed (not -e) into a fresh venv, used from a folder that is not the repository: the
  introductory main job (default run folder, resumes on the second call), evaluate, and colorize with the shipped
  model (package data). The venv sees this environment's dependencies through a .pth line (no network), which
  does not run their .pth files, so the checkout's editable install stays out of it."""
  import site
  import sysconfig
  pytest.importorskip("setuptools")  # the build backend, without build isolation (no network)
  src, wheels, venv, user, home = (tmp_path / d for d in ("src", "wheels", "venv", "user", "home"))
  for d in (user, home):
    d.mkdir()
  shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(  # build from a copy: no build/ left in the checkout
      ".*", "runs", "build", "*.egg-info", "__pycache__", "tests", "experiments", "benchmarks"))
  _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
        str(src)], tmp_path, dict(os.environ))
  _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, dict(os.environ))
  py = str(venv / "bin" / "python")
  venv_site = pathlib.Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                tmp_path, dict(os.environ)).strip())
  deps = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
  (venv_site / "deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
  _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", str(next(wheels.glob("*.whl")))],
       tmp_path, dict(os.environ))
  shutil.copytree(REPO / "configs", user / "configs")  # a user's copy of the recipes, not the repository
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS", "VIRTUAL_ENV")}
  env.update(HOME=str(home), JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")

  where = _run([py, "-c", "import jaxcolor; print(jaxcolor.__file__)"], user, env)
  assert where.strip().startswith(str(venv_site)), where  # the installed copy, not the checkout

  cmd = [py, "-m", "jaxcolor.main", "--config=configs/unet_cls.py:local", "--config.total_steps=2"]
  out = _run(cmd, user, env)
  run = user / "runs" / "unet_cls_local"
  assert f"run folder: {run}" in out
  assert (run / "checkpoints" / "2").is_dir() and (run / "config.json").is_file()
  out = _run([*cmd[:-1], "--config.total_steps=3"], user, env)  # the same command again: resumes
  assert f"resumed from step 2 in {run}" in out and (run / "checkpoints" / "3").is_dir()

  out = _run([py, "-m", "jaxcolor.evaluate", "--workdir=runs/unet_cls_local", "--dataset=skimage_photos",
              "--size=32", "--out=eval"], user, env)
  assert (user / "eval" / "skimage_photos.json").is_file(), out

  photo = pathlib.Path(os.environ["JAXCOLOR_DATA"]) / "eval" / "kodak24" / "kodim03.png"
  if not photo.is_file():  # the embedded photos stand in when the shared photos are absent
    import skimage.data
    photo = pathlib.Path(skimage.data.__file__).parent / "chelsea.png"
  shutil.copy(photo, user / "old.png")
  out = _run([py, "-m", "jaxcolor.colorize", "old.png"], user, env)  # the shipped default model
  assert (user / "colorized" / "old.png").is_file(), out
