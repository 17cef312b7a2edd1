"""A trained colorizer loaded for inference: from a run's workdir or a reference model shipped in the package.

`Colorizer` holds the config, model, task and variables, and predicts ab two ways:
- `predict_ab(photos)`: full-size uint8 photos -> ab at the model's input size (colorize: each photo is
  resized on the host, the ab is later upsampled to the photo and joined with its own L, `jaxcolor.inference.merge`);
- `predictor(decoding, temperature)`: a jitted function of a batch of equal-size photos (B, S, S, 3) -> ab
  (B, S, S, 2), the model running at its own input size inside (evaluate: metrics at S whatever the model sees).

The model's input size defaults to `config.inference_size` (set by reference models), else the size it was
trained at (`config.image_size`): a network trained on 64 px photos sees objects at 64 px scale, and running it
on 256 px inputs shows it scenes at a scale it never learned (measured: worse than gray on Kodak24).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image


def model_input_size(config: Any, size: int | None = None) -> int:
  """The size the model sees: `size`, else config.inference_size, else config.image_size."""
  return int(size or config.get("inference_size") or config.image_size)


def add_flip_flags(parser) -> None:
  """--flip / --no_flip (args.flip: True, False or None, the model's config.inference_flip) on a command line."""
  parser.add_argument("--flip", dest="flip", action="store_const", const=True, default=None,
                      help="average with the mirrored photo's prediction (default: the model's config.inference_flip)")
  parser.add_argument("--no_flip", dest="flip", action="store_const", const=False, help="do not (faster)")


class Colorizer:
  """A restored run or reference model: config, model, task, variables and jitted predictors.

  Colorizer(workdir) restores a training run's newest (or `step`) checkpoint; Colorizer.reference(name) loads
  one of `jaxcolor.run_dir.REFERENCE_MODELS`. `size`: the model's input size (see `model_input_size`); `decoding` /
  `temperature` override a classification run's own; `flip` the config's inference_flip (average with the
  mirrored photo's prediction); `propagate=False` leaves given hints to the network alone.
  """

  def __init__(self, workdir: str, step: int | None = None, size: int | None = None,
               temperature: float | None = None, decoding: str | None = None, propagate: bool = True,
               flip: bool | None = None):
    from jaxcolor import run_dir
    arts = run_dir.read_artifacts(workdir)
    variables, self.step = run_dir.restore_variables(workdir, step)
    self.source = str(workdir)
    self._setup(arts.config, arts.bins, arts.prior, variables, size, temperature, decoding, propagate, flip)

  @classmethod
  def reference(cls, name: str, size: int | None = None, temperature: float | None = None,
                decoding: str | None = None, propagate: bool = True, flip: bool | None = None) -> Colorizer:
    """One of the reference models shipped inside the package (`jaxcolor.inference.reference`)."""
    from jaxcolor.inference import reference
    model = reference.load(name)
    self = cls.__new__(cls)
    self.step = model.step
    self.source = f"reference model {name!r} ({model.folder})"
    self._setup(model.config, model.bins, model.prior, model.variables, size, temperature, decoding, propagate,
                flip)
    return self

  def _setup(self, config: dict[str, Any], bins, prior, variables, size, temperature, decoding,
             propagate, flip) -> None:
    import jax
    import ml_collections
    from jaxcolor import builders, models
    self.config = ml_collections.ConfigDict(config)
    self.bins = bins
    self.model = builders.build_model(self.config, bins.num_bins if bins is not None else 2)
    self.task = builders.build_task(self.config, bins, prior)
    stride = models.MODELS[self.config.model].output_stride
    self.size = model_input_size(self.config, size)
    if self.size <= 0 or self.size % stride:
      raise ValueError(f"model input size {self.size} must be a positive multiple of {self.config.model}'s "
                       f"output stride {stride}")
    self.variables = jax.device_put(jax.device_get(variables))  # one device, whatever the saved sharding
    self.takes_hints = bool(getattr(self.model, "takes_hints", False))
    from jaxcolor import hint_propagation
    # Given hints are carried by lightness and along L's edges after the network (`jaxcolor.hint_propagation`)
    # unless propagate=False.
    self.propagation = hint_propagation.Propagation() if propagate and self.takes_hints else None
    self.temperature = float(temperature if temperature is not None else self.task.temperature)
    from jaxcolor import steps
    from jaxcolor.cpu import compiler
    # Test-time mirroring (`steps.predict_ab_from_l`): the config's inference_flip unless `flip` says otherwise.
    self.flip = bool(self.config.get("inference_flip", False) if flip is None else flip)
    self._predict_fn = functools.partial(steps.predict_ab, model=self.model, task=self.task, flip=self.flip)
    # (variables, uint8 (B, s, s, 3), hint channels or None, temperature) -> ab: the temperature is an argument,
    # so changing it (the app's slider) compiles nothing. A batch without any hint skips the propagation (and
    # its second network pass): it would change nothing.
    self._predict = compiler.jit(functools.partial(self._predict_fn, decoding=decoding,
                                                   propagation=self.propagation))
    self._predict_unhinted = compiler.jit(functools.partial(self._predict_fn, decoding=decoding))

  def predictor(self, decoding: str | None = None, temperature: float | None = None, *, resize: bool = True,
                hint_points: int = 0, hint_seed: int = 0, propagation=None):
    """Jitted (variables, uint8 (B, S, S, 3)) -> ab (B, S, S, 2) in Lab units, under the given decoding
    (`steps.predict_ab`).

    resize=True: the model runs at `self.size` whatever S (antialiased cubic resize of the RGB on device,
    then the ab upsampled bilinearly back to S); False: it runs at S. hint_points > 0 (a hint-taking model):
    that many hints per photo, simulated from the photo's own colors at the model's input size as in training
    (`jaxcolor.hints.HintSampler`, the run's config.hints), each photo's keyed by `hint_seed` and its pixels
    (`jaxcolor.hints.photo_keys`; the evaluation of hints).
    propagation: a `jaxcolor.hint_propagation.Propagation` applied after the network (None: the network alone).
    """
    from jaxcolor import hints
    from jaxcolor.cpu import compiler
    if hint_points and not self.takes_hints:
      raise ValueError(f"{self.source} does not take color hints ({self.config.model})")
    predict = functools.partial(
        self._predict_fn, decoding=decoding, size=self.size if resize else None,
        hint_sampler=hints.sampler_from_fields(self.config.hints) if hint_points else None,
        num_hints=hint_points, hint_seed=hint_seed, propagation=propagation if hint_points else None)
    return compiler.jit(lambda variables, images: predict(variables, images, temperature=temperature))

  def predict_ab(self, rgbs: Sequence[np.ndarray], batch_size: int,
                 hints: Sequence[np.ndarray | None] | None = None,
                 temperature: float | None = None) -> list[np.ndarray]:
    """Full-size uint8 RGB photos -> ab (size, size, 2) each; batches padded to `batch_size` (one compile).

    hints: per photo, hint channels (size, size, 3) at the model's input size (`jaxcolor.inference.hint_file`)
    or None (no hints); only for a model that takes hints; spread by `self.propagation` when set.
    temperature: the annealed mean's (classification; default: the one this Colorizer was made with, else the
    run's).
    """
    t = np.float32(self.temperature if temperature is None else temperature)
    if t <= 0:
      raise ValueError(f"temperature must be > 0, got {temperature}")
    if hints is not None and any(h is not None for h in hints) and not self.takes_hints:
      raise ValueError(f"{self.source} does not take color hints ({self.config.model}); use --model=guided or a "
                       f"run trained with hints")
    small = [np.asarray(Image.fromarray(x).resize((self.size, self.size), Image.BICUBIC)) for x in rgbs]
    empty = np.zeros((self.size, self.size, 3), np.float32)
    given = [empty if hints is None or hints[i] is None else np.asarray(hints[i], np.float32)
             for i in range(len(small))]
    out = []
    for i in range(0, len(small), batch_size):
      chunk, chunk_hints = small[i:i + batch_size], given[i:i + batch_size]
      pad = batch_size - len(chunk)
      images = np.stack(chunk + [np.zeros_like(chunk[0])] * pad)
      hint_batch = np.stack(chunk_hints + [empty] * pad) if self.takes_hints else None
      predict = self._predict if hint_batch is not None and hint_batch.any() else self._predict_unhinted
      out.extend(np.asarray(predict(self.variables, images, hint_batch, t))[:len(chunk)])
    return out
