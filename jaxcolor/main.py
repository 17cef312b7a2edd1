"""Entry point: python -m jaxcolor.main --config=configs/<name>.py[:variant] --workdir=DIR [--config.key=value]

Starts jax.distributed when launched as one of several processes (see jaxcolor.parallel), hides accelerators
from TensorFlow (it only feeds data), and calls `train.train_and_evaluate`.
"""
import logging as pylogging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only decodes images here; spare its chatter

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and the run's config.")
config_flags.DEFINE_config_file("config", None, "Training config file (a get_config() python file).",
                                lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


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
  from jaxcolor import parallel, train
  parallel.maybe_initialize_distributed()
  logging.info("config:\n%s", FLAGS.config)
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
