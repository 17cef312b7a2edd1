"""Defaults shared by every config; each system's file imports this and overrides a few fields.

    python -m jaxcolor.main --config=configs/default.py --workdir=runs/jaxcolor_default

Field groups: model, task (head, loss, ab bins, rebalancing, decoding), data (see the docstring of
`jaxcolor.input_pipeline`), optimizer (see `jaxcolor.optim`), loop (logging, eval, checkpoints).
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Model: a name from jaxcolor.models.MODELS and its constructor arguments.
  c.model = "unet"
  c.model_kwargs = ml_collections.ConfigDict()
  c.compute_dtype = "float32"  # or "bfloat16": activations; parameters stay float32
  c.pretrained = ml_collections.ConfigDict()  # encoder name -> local Keras .h5 file (pretrained models)
  c.init_from = ""  # start from a reference model ("vivid", "accurate") or a run's workdir (fine-tuning)
  c.init_from_exclude = ()  # variable paths kept at their fresh init, e.g. ("params/head",): another head's body
  c.inference_size = ml_collections.config_dict.placeholder(int)  # colorize / evaluate input; None: image_size

  # Task: what is predicted and how it is scored.
  c.head = "regression"  # or "classification"
  c.target_space = "lab"  # "rgb": predict RGB (the RGB autoencoder of seed 003)
  c.loss = "l2"  # a name from jaxcolor.losses.LOSSES
  c.loss_kwargs = ml_collections.ConfigDict()
  c.bin_step = 10.0  # ab grid: 313 in-gamut bins with step 10 over [-110, 110]
  c.bin_extent = 110.0
  c.soft_k = 5
  c.soft_sigma = 5.0
  c.rebalance = True  # classification: class-rebalancing weights from the empirical prior
  c.rebalance_lambda = 0.5
  c.prior_batches = 20  # train batches streamed to estimate the prior (when no prior_path)
  c.prior_path = ""  # a prior.npz from an earlier run (jaxcolor.prior.save_prior)
  c.decoding = "annealed_mean"  # classification: mode, mean or annealed_mean
  c.temperature = 0.38

  # Data (jaxcolor.input_pipeline): the embedded scikit-image photos work offline.
  c.dataset = "skimage_photos"
  c.data_dir = "~/tensorflow_datasets"
  c.train_split = ml_collections.config_dict.placeholder(str)  # None: the dataset's own
  c.eval_split = ml_collections.config_dict.placeholder(str)
  c.image_size = 64
  c.eval_image_size = ml_collections.config_dict.placeholder(int)  # None: image_size
  c.batch_size = 16  # global batch, split over processes and devices
  c.eval_batch_size = ml_collections.config_dict.placeholder(int)  # None: batch_size
  c.seed = 0
  c.augment = ml_collections.ConfigDict(dict(random_resized_crop=True, crop_area=(0.25, 1.0), flip=True,
                                             rotation_degrees=0.0, zoom=0.0))
  c.mix_datasets = ()  # ((name, weight), ...): other datasets mixed into the train stream
  c.progressive_sizes = ()
  c.min_colorfulness = 2.0
  c.shuffle_buffer = 2048
  c.cache = False
  c.prefetch = 2

  # Optimizer (jaxcolor.optim).
  c.optimizer = "adam"
  c.learning_rate = 1e-3
  c.weight_decay = 0.0  # "adam" / "sgd": L2 on the gradient; "adamw": decoupled
  c.weight_decay_on = "all"  # or "kernels": no decay of biases and BatchNorm parameters
  c.schedule = "constant"
  c.warmup_steps = 0  # "warmup_cosine": linear warm-up steps
  c.end_lr_factor = 0.0  # "warmup_cosine": final learning rate / learning_rate
  c.total_steps = 1000
  c.grad_clip_norm = 0.0

  # Loop.
  c.parallelism = "jit"  # or "pmap"
  c.log_every = 50
  c.eval_every = 500  # and at the end; 0: only at the end
  c.eval_batches = 0  # 0: the whole eval split
  c.evals = ("color_metrics",)
  c.num_sample_images = 4
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.async_checkpoints = True
  c.early_stopping_metric = ""  # e.g. "color_metrics/ab_mae"; "" disables early stopping
  c.early_stopping_mode = "min"
  c.early_stopping_patience = 5  # evaluations without improvement
  return c


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
