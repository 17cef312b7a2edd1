"""Config -> model, task, loss and optimizer, with every check done before anything is compiled.

Training, evaluation and colorization all build their objects here, so a config means the same thing to each
of them, and a mistake (unknown name, a loss that does not fit the head, a batch that does not split over the
devices) fails in `check_config` with the choices listed, not in the middle of an XLA compilation.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from jaxcolor import hints, losses, models, optim, parallel, run_dir
from jaxcolor.colorspace import color, prior, quantize
from jaxcolor.evaluation import evaluators
from jaxcolor.losses import objective
from jaxcolor import task as task_lib

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def _choice(name: str, value: Any, choices) -> None:
  if value not in choices:
    raise ValueError(f"config.{name}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Validates a training config; raises ValueError naming the field and the valid choices."""
  _choice("model", config.model, sorted(models.MODELS))
  _choice("head", config.head, task_lib.HEADS)
  _choice("target_space", config.target_space, task_lib.TARGET_SPACES)
  _choice("compute_dtype", config.compute_dtype, sorted(DTYPES))
  _choice("parallelism", config.parallelism, parallel.PARALLELISMS)
  _choice("loss", config.loss, sorted(losses.LOSSES))
  _choice("decoding", config.decoding, quantize.DECODINGS)
  if config.target_space == "rgb" and config.head != "regression":
    raise ValueError("config.target_space='rgb' needs config.head='regression'")
  # Unknown terms, weights or options, a term that does not fit the head or lacks what it needs fail here.
  objective.check(config, provides={"logits": config.head == "classification",
                                    "lab_target": config.target_space == "lab"})
  if config.temperature <= 0:
    raise ValueError(f"config.temperature must be > 0, got {config.temperature}")
  if not 0 <= config.rebalance_lambda <= 1:
    raise ValueError(f"config.rebalance_lambda must be in [0, 1], got {config.rebalance_lambda}")
  for field in ("total_steps", "batch_size", "image_size", "log_every"):
    if int(config[field]) <= 0:
      raise ValueError(f"config.{field} must be > 0, got {config[field]}")
  evaluators.eval_specs(config)  # unknown evaluator types, fields, datasets or decodings fail here
  parallel.check_batch_size(config.batch_size, config.parallelism)
  parallel.check_batch_size(config.get("eval_batch_size") or config.batch_size, config.parallelism)
  optim.check_optim_config(config)
  if config.get("init_from"):
    run_dir.init_source(config.init_from)  # a reference model name or a run directory, else fails with the names
  exclude = config.init_from_exclude
  if exclude and (not config.get("init_from") or not all(isinstance(e, str) and e for e in exclude)):
    raise ValueError(f"config.init_from_exclude={exclude!r} needs config.init_from and names variable paths "
                     f"such as 'params/head'")
  if config.get("inference_size") is not None and int(config.inference_size) <= 0:
    raise ValueError(f"config.inference_size must be > 0 or None, got {config.inference_size}")
  model_cls = models.MODELS[config.model]
  sizes = [config.image_size] + [s for _, s in config.progressive_sizes]
  stride = model_cls.output_stride
  for size in sizes:
    if size % stride:
      raise ValueError(f"image size {size} is not a multiple of {config.model}'s output stride {stride}")
  model = build_model(config, num_bins=2)  # unknown model_kwargs fail here, before any tracing
  if config.hints.enabled:
    if not model.takes_hints:
      raise ValueError(f"config.hints.enabled needs a model that takes color hints: siggraph17, or efficientnet_unet "
                       f"/ resnet50_unet with config.model_kwargs.guided=True (got {config.model})")
    sampler = hints.sampler_from_config(config)  # bad p / location / patch sizes fail here
    if max(sampler.patch_sizes) > min(sizes):
      raise ValueError(f"config.hints.patch_sizes up to {max(sampler.patch_sizes)} px do not fit "
                       f"{min(sizes)} px images")
  model_target = getattr(model, "target", "lab")
  if model_target != config.target_space:
    raise ValueError(f"config.target_space={config.target_space!r} but the model predicts {model_target!r}; "
                     f"set config.model_kwargs.target to match")
  encoders = tuple(getattr(model_cls, "encoder_names", ()))
  unknown = sorted(k for k in config.pretrained.keys() if k not in encoders)
  if unknown:
    raise ValueError(f"config.pretrained names {unknown}, but {config.model} has pretrained encoders: "
                     f"{', '.join(encoders) or 'none'}")
  for name, source in config.pretrained.items():
    if source:  # a missing wheel or file fails here, before anything compiles
      from jaxcolor.models import pretrained
      pretrained.check_source(model.encoders()[name], source)
  if getattr(model, "finetune_encoder_bn", True) is False and not any(config.pretrained.values()):
    logging.warning("%s: no pretrained encoder file is given, yet its encoder BatchNorm keeps its initial "
                    "statistics (mean 0, variance 1) in training, so the random encoder runs unnormalized; "
                    "set config.model_kwargs.finetune_encoder_bn=True to train from scratch", config.model)


def build_bins(config: ml_collections.ConfigDict) -> quantize.ABBins | None:
  return quantize.make_bins(config.bin_step, config.bin_extent) if config.head == "classification" else None


def build_model(config: ml_collections.ConfigDict, num_bins: int):
  """The configured Flax module (one for training and inference); under pmap its BatchNorm averages
  statistics over the device axis. On XLA:CPU its layer fields (`conv`, ...) get jaxcolor's CPU kernels
  (`jaxcolor.cpu.kernels`, the one place they are chosen)."""
  from jaxcolor.cpu import kernels

  kwargs = dict(config.model_kwargs.to_dict())
  bn_axis = parallel.PMAP_AXIS if config.parallelism == "pmap" else None
  model_cls = models.MODELS.get(config.model)
  cpu = kernels.for_model(model_cls) if model_cls is not None else {}  # an unknown name fails in get_model
  try:
    return models.get_model(config.model, head=config.head, num_bins=num_bins,
                            dtype=DTYPES[config.compute_dtype], bn_axis_name=bn_axis, **cpu, **kwargs)
  except TypeError as e:
    raise ValueError(f"config.model_kwargs {sorted(kwargs)} do not fit model {config.model!r}: {e}") from e


def build_task(config: ml_collections.ConfigDict, bins: quantize.ABBins | None,
               prior_p: np.ndarray | None) -> task_lib.ColorTask:
  """The targets / decoding of the run; rebalancing weights come from `prior_p` when given."""
  weights = None
  if config.head == "classification" and config.rebalance:
    if prior_p is None:
      raise ValueError("rebalancing needs the ab prior")
    weights = np.asarray(prior.rebalance_weights(jnp.asarray(prior_p), config.rebalance_lambda))
  return task_lib.ColorTask(head=config.head, target_space=config.target_space,
                            output_stride=models.MODELS[config.model].output_stride, bins=bins,
                            class_weights=weights, soft_k=config.soft_k, soft_sigma=config.soft_sigma,
                            decoding=config.decoding, temperature=config.temperature)


def build_loss(config: ml_collections.ConfigDict) -> objective.Objective:
  """The run's objective: config.loss plus the weighted terms of config.losses (`objective.terms`)."""
  return objective.build(config)


def estimate_prior(config: ml_collections.ConfigDict, bins: quantize.ABBins, batches) -> np.ndarray:
  """Smoothed empirical prior from `config.prior_batches` uint8 RGB batches (Lab on device)."""
  acc = prior.PriorAccumulator(bins)
  to_ab = jax.jit(lambda x: color.rgb_to_lab(x)[..., 1:])
  for _, batch in zip(range(config.prior_batches), batches):
    acc.add(to_ab(batch["image"]), np.asarray(batch["mask"])[:, None, None])
  return np.asarray(acc.prior())

