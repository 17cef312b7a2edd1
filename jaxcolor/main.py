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
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # and its oneDNN notice (no TF math runs here)

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and the run's config; default "
                    "runs/<config>[_<variant>] under the current folder (a second call resumes it).")
config_flags.DEFINE_config_file("config", None, "Training config file (a get_config() python file).",
                                lock_config=True)
flags.DEFINE_bool("verbose", False, "Also log the whole config and the INFO messages of the libraries (TFDS, "
                  "JAX, clu); without it the log holds progress, evaluations, warnings and where the outputs are.")
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


class _Quiet(pylogging.Filter):
  """What a user reads: jaxcolor's own INFO (progress with rate and ETA, evaluations, resume, outputs) and every
  library's warnings; TFDS only from errors up (it warns about its own defaults), Orbax only from warnings up
  (it logs each save step by step). `verbose` keeps all but Orbax's INFO."""

  def __init__(self, verbose: bool):
    super().__init__()
    self.verbose = verbose

  def filter(self, record: pylogging.LogRecord) -> bool:
    path = record.pathname.replace(os.sep, "/")
    if "/orbax/" in path:
      return record.levelno >= pylogging.WARNING
    if self.verbose:
      return True
    if "/tensorflow_datasets/" in path:
      return record.levelno >= pylogging.ERROR
    return record.levelno >= pylogging.WARNING or "/jaxcolor/" in path


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_Quiet(FLAGS.verbose))
  import tensorflow as tf  # only the input pipeline uses it: keep it off the accelerators
  tf.config.set_visible_devices([], "GPU")
  if not (FLAGS.verbose or sys.stdout.isatty()):  # progress bars are escape codes in a file or pipe
    import tensorflow_datasets as tfds
    tfds.disable_progress_bar()
  import jax
  from jaxcolor import parallel, storage, train
  parallel.maybe_initialize_distributed()
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS["config"]))
  if jax.process_index() == 0:
    print(f"run folder: {storage.path(workdir)}", flush=True)  # absolute, or the gs:// URL
  if FLAGS.verbose:
    logging.info("config:\n%s", FLAGS.config)
  else:
    logging.info("config %s: model %s, %s head, %d steps of %d photos at %d px (the whole config: config.json in the "
                 "run folder, or --verbose)", config_flags.get_config_filename(FLAGS["config"]), FLAGS.config.model,
                 FLAGS.config.head, FLAGS.config.total_steps, FLAGS.config.batch_size, FLAGS.config.image_size)
  train.train_and_evaluate(FLAGS.config, workdir)
  if jax.process_index() == 0:
    print(where_outputs_are(storage.path(workdir)), flush=True)


def where_outputs_are(workdir) -> str:
  """The closing lines of a run: where its outputs are and how to use it."""
  from jaxcolor import checkpoint
  return "\n".join([
      f"run folder: {workdir}",
      f"  checkpoints: {workdir / checkpoint.CHECKPOINT_DIR} (the same command resumes from the newest)",
      f"  samples: {workdir / 'samples'} (L | prediction | truth at each evaluation)",
      f"  TensorBoard logs: tensorboard --logdir {workdir / 'tensorboard'}",
      f"colorize photos with it: python -m jaxcolor.colorize PHOTOS --workdir={workdir} --out=colorized",
      f"evaluate it: python -m jaxcolor.evaluate --workdir={workdir} --dataset=kodak24 --size=256",
  ])


if __name__ == "__main__":
  _config_imports_resolve(sys.argv)
  app.run(main)
