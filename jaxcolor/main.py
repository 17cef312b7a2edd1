"""Entry point: python -m jaxcolor.main --config=configs/<name>.py[:variant] [--workdir=DIR] [--config.key=value]

Without --workdir the run goes to runs/<name>[_<variant>] under the current folder (printed at start); calling
the same command again resumes it. Starts jax.distributed when launched as one of several processes (see jaxcolor.parallel), hides accelerators
from TensorFlow (it only feeds data), and calls `train.train_and_evaluate`.
"""
import logging as pylogging
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only decodes images here; spare its chatter

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and the run's config; default "
                    "runs/<config>[_<variant>] under the current folder (a second call resumes it).")
config_flags.DEFINE_config_file("config", None, "Training config file (a get_config() python file).",
                                lock_config=True)
flags.mark_flags_as_required(["config"])


def default_workdir(config_arg: str) -> str:
  """runs/<config file stem>[_<variant>]: `configs/unet_cls.py:local` -> runs/unet_cls_local."""
  path, _, variant = config_arg.partition(":")
  return os.path.join("runs", pathlib.Path(path).stem + (f"_{variant}" if variant else ""))


def _config_imports_resolve(argv: list[str]) -> None:
  """Config files import their siblings (`from configs import default`): make the folder holding `configs/`
  importable, so `--config=/elsewhere/configs/x.py` works from any current folder (appended: the installed
  jaxcolor keeps precedence)."""
  for arg in argv:
    if arg.startswith("--config="):
      folder = pathlib.Path(arg[len("--config="):].partition(":")[0]).expanduser().absolute().parent
      if folder.name == "configs" and str(folder.parent) not in sys.path:
        sys.path.append(str(folder.parent))


class _QuietOrbax(pylogging.Filter):
  """Orbax logs every save step by step at INFO; keep its warnings and errors only."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno >= pylogging.WARNING or "/orbax/" not in record.pathname


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietOrbax())
  import tensorflow as tf  # only the input pipeline uses it: keep it off the accelerators
  tf.config.set_visible_devices([], "GPU")
  import jax
  from jaxcolor import parallel, storage, train
  parallel.maybe_initialize_distributed()
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS["config"]))
  if jax.process_index() == 0:
    print(f"run folder: {storage.path(workdir)}", flush=True)  # absolute, or the gs:// URL
  logging.info("config:\n%s", FLAGS.config)
  train.train_and_evaluate(FLAGS.config, workdir)


if __name__ == "__main__":
  _config_imports_resolve(sys.argv)
  app.run(main)
