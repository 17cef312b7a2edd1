"""The default config: every field a run has, with the value that applies when a config does not set it.

Why in the package: a run's config.json is read back by resume, colorize and evaluate, possibly by a newer
jaxcolor whose configs have fields the run predates. `run_dir.read_config` reads those as here, so a
field added later must default to what the code did before it existed (resuming then compares like with
like, with no list of added fields to maintain). `configs/default.py` starts every recipe from this.
"""
import dataclasses

import ml_collections

from jaxcolor import hints
from jaxcolor.colorspace import quantize
from jaxcolor.evaluation import evaluators
from jaxcolor.losses import objective


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
  c.inference_flip = False  # colorize / evaluate: average with the mirrored photo's prediction (2x the network)
  # Color hints simulated in training for a hint-taking model (jaxcolor.hints; Zhang et al. 2017): per photo a
  # geometric number of points (P(none) = p), square patches of patch_sizes px at "gaussian" or "uniform" places.
  # Their values: HintSampler's fields (the paper's: p = 1/8, at most 64 points, 1-9 px, Gaussian around the center).
  c.hints = ml_collections.ConfigDict(dict(enabled=False, **dataclasses.asdict(hints.HintSampler())))

  # Task: what is predicted and how it is scored.
  c.head = "regression"  # or "classification"
  c.target_space = "lab"  # "rgb": predict RGB (the RGB autoencoder of seed 003)
  c.loss = "l2"  # a name from jaxcolor.losses.LOSSES
  c.loss_kwargs = ml_collections.ConfigDict()
  # Objective (jaxcolor.losses.objective): a weight per registered term, unset (None) = off except c.loss at 1; a set
  # weight adds the term (0 removes it, c.loss's too); options per term in c.loss_options (c.loss's: + c.loss_kwargs).
  c.losses, c.loss_options = objective.config_fields()
  c.bin_step = 10.0  # ab grid: 313 in-gamut bins with step 10 over [-110, 110]
  c.bin_extent = 110.0
  c.soft_k = 5
  c.soft_sigma = 5.0
  c.rebalance = True  # classification: class-rebalancing weights from the empirical prior
  c.rebalance_lambda = 0.5
  c.prior_batches = 20  # train batches streamed to estimate the prior (when no prior_path)
  c.prior_path = ""  # a prior.npz from an earlier run (jaxcolor.colorspace.prior.save_prior)
  c.decoding = "annealed_mean"  # classification: mode, mean or annealed_mean
  c.temperature = quantize.DEFAULT_TEMPERATURE  # 0.38

  # Data (jaxcolor.data.input_pipeline): the embedded scikit-image photos work offline.
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
  c.min_side = 16  # folder photos with a shorter side are skipped
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
  c.lr_multipliers = ()  # ((param prefix, factor), ...): e.g. (("efficientnet", 0.3),), a slower encoder
  c.b1, c.b2, c.eps = 0.9, 0.999, 1e-8  # "adam" / "adamw"
  c.momentum, c.nesterov = 0.9, False  # "sgd"
  c.decay_factor = 0.1  # "step" schedule: learning rate x decay_factor every decay_every steps
  c.decay_every = ml_collections.config_dict.placeholder(int)
  c.plateau_patience, c.plateau_factor, c.plateau_cooldown = 10, 0.1, 0  # "reduce_on_plateau" (optax.contrib)
  c.plateau_accumulation_size = 1  # train steps whose mean loss is one plateau check
  c.freeze_prefixes = ()  # param path prefixes held fixed for the first freeze_steps steps (e.g. an encoder)
  c.freeze_steps = 0

  # Loop.
  c.parallelism = "jit"  # or "pmap"
  c.log_every = 50
  c.eval_every = 500  # and at the end; 0: only at the end
  c.eval_batches = 0  # 0: the whole eval split
  # Named evaluations (jaxcolor.evaluation.evaluators.EvalSpec): the run's eval split with its settings; add e.g.
  # c.evals.kodak24 = evaluators.eval_fields(dataset="kodak24", size=256, every=0)  (at the end).
  c.evals = ml_collections.ConfigDict({"color_metrics": evaluators.eval_fields()})
  c.num_sample_images = 4
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  c.async_checkpoints = True
  c.early_stopping_metric = ""  # e.g. "color_metrics/ab_mae"; "" disables early stopping
  c.early_stopping_mode = "min"
  c.early_stopping_patience = 5  # evaluations without improvement
  return c
