"""Defaults shared by every config; each system's file imports this and overrides a few fields.

    python -m jaxcolor.main --config=configs/default.py --workdir=runs/jaxcolor_default

Field groups: model, task (head, loss, ab bins, rebalancing, decoding), data (see the docstring of
`jaxcolor.data.input_pipeline`), optimizer (see `jaxcolor.optim`), loop (logging, eval, checkpoints).
"""
import ml_collections

from jaxcolor.defaults import get_config  # noqa: F401  (every field and its default; recipes override a few)


def seed003_data(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Seed 003's data recipe, shared by its systems: whole photos (no random crop) with flips, rotations
  up to 10 degrees and zooms up to 20%. Visual Genome is not in TFDS; its photos are mostly COCO's, so COCO 2017
  (`coco/2017`, a TFDS download) stands in."""
  c.dataset = "coco/2017"
  c.augment.random_resized_crop = False
  c.augment.flip = True
  c.augment.rotation_degrees = 10.0
  c.augment.zoom = 0.2
  return c


VARIANTS = ("", "local")


def check_variant(variant: str) -> None:
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; choose one of: {', '.join(map(repr, VARIANTS))}")


def local(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The settings every config's `local` variant shares: the embedded photos, 32 px, batch 8, 2 steps.

  A CPU smoke run of the full pipeline (data, steps, evaluation, checkpoint); each config then shrinks its
  model (model_kwargs) and overrides whatever its system needs.
  """
  c.dataset = "skimage_photos"
  c.image_size = 32
  c.batch_size = 8
  c.total_steps = 2
  c.log_every = 1
  c.eval_every = 0
  c.eval_batches = 1
  c.checkpoint_every = 2
  c.prior_batches = 2
  return c
