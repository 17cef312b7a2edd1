"""The pure train step: jit over a mesh, pmap and a single device agree; targets for each head."""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcolor import hint_propagation, parallel, steps
from jaxcolor import hints as hints_lib
from jaxcolor.colorspace import color, quantize
from jaxcolor.losses import head_loss, objective
from jaxcolor import task as task_lib
from jaxcolor.models import get_model

BATCH, SIZE = 8, 16


def _images(seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (BATCH, SIZE, SIZE, 3), dtype=np.uint8)


def _setup(head: str, bn_axis_name=None, fused_head=False):
  model = get_model("unet", head=head, features=(4, 8), bn_axis_name=bn_axis_name)
  if head == "classification":
    bins = quantize.make_bins()
    task = task_lib.ColorTask(head=head, bins=bins, class_weights=np.linspace(0.5, 2, bins.num_bins))
    loss = dataclasses.replace(objective.single("cross_entropy"), fused_head=fused_head)
  else:
    task, loss = task_lib.ColorTask(head=head), objective.single("l2")
  # SGD: Adam divides by sqrt(v), which turns float rounding in near-zero gradients into lr-sized steps.
  tx = optax.sgd(0.1, momentum=0.9)
  state = steps.init_state(steps.make_rng(0), model=model, tx=tx, image_shape=(1, SIZE, SIZE, 3))
  step = functools.partial(steps.train_step, model=model, tx=tx, task=task, loss_fn=loss)
  return state, step


def _run_single(head):
  state, step = _setup(head)
  step = jax.jit(step)
  for i in range(2):
    state, m = step(state, {"image": _images(i), "mask": np.ones(BATCH, bool)})
  return state, m


# The regression case (~40 s) is marked slow: the classification case covers the same paths plus the bins.
# Classification: the reference forms the logits; the mesh and pmap steps run the trainer's fused head + loss
# (jaxcolor.losses.head_loss), in chunks of 64 pixels over the batch.
@pytest.mark.parametrize("head", [pytest.param("regression", marks=pytest.mark.slow), "classification"])
def test_jit_mesh_and_pmap_match_single_device(head, monkeypatch):
  assert jax.device_count() == 8
  ref, ref_m = _run_single(head)

  monkeypatch.setattr(head_loss, "CHUNK_ROWS", 64)
  defer = head == "classification"
  mesh = parallel.make_mesh()
  state, step = _setup(head, fused_head=defer)
  state = jax.device_put(state, parallel.replicated(mesh))
  jstep = jax.jit(step, in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
                  out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)), donate_argnums=(0,))
  for i in range(2):
    batch = jax.device_put({"image": _images(i), "mask": np.ones(BATCH, bool)}, parallel.batch_sharded(mesh))
    state, m = jstep(state, batch)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), state.params, ref.params)
  np.testing.assert_allclose(m["loss"], ref_m["loss"], rtol=1e-5)

  state, step = _setup(head, bn_axis_name=parallel.PMAP_AXIS, fused_head=defer)
  pstep = jax.pmap(functools.partial(step, axis_name=parallel.PMAP_AXIS), axis_name=parallel.PMAP_AXIS,
                   donate_argnums=(0,))
  state = parallel.replicate(state)
  for i in range(2):
    state, m = pstep(state, parallel.shard_for_pmap({"image": _images(i), "mask": np.ones(BATCH, bool)}))
  state = parallel.unreplicate(state)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), state.params, ref.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), state.batch_stats,
               ref.batch_stats)
  np.testing.assert_allclose(m["loss"][0], ref_m["loss"], rtol=1e-5)


def test_step_learns_and_folds_rng_with_step():
  state, step = _setup("regression")
  step = jax.jit(step)
  batch = {"image": _images(0), "mask": np.ones(BATCH, bool)}
  first = None
  for _ in range(15):
    state, m = step(state, batch)
    first = float(m["loss"]) if first is None else first
  assert float(m["loss"]) < first and bool(m["finite"]) and int(state.step) == 15


def test_targets_per_head():
  images = jnp.asarray(_images(3))
  l, t, w = task_lib.ColorTask().inputs_and_targets(images)
  assert l.shape == (BATCH, SIZE, SIZE, 1) and t.shape == (BATCH, SIZE, SIZE, 2) and w is None
  assert float(jnp.abs(t).max()) <= 1.0
  _, rgb, _ = task_lib.ColorTask(target_space="rgb").inputs_and_targets(images)
  np.testing.assert_allclose(rgb, images / 255.0, atol=1e-6)
  bins = quantize.make_bins()
  ctask = task_lib.ColorTask(head="classification", bins=bins, output_stride=4,
                             class_weights=np.ones(bins.num_bins))
  l, soft, w = ctask.inputs_and_targets(images)
  assert soft.indices.shape == (BATCH, SIZE // 4, SIZE // 4, 5) and w.shape == (BATCH, SIZE // 4, SIZE // 4)
  logits = jnp.log(quantize.to_dense(soft, bins.num_bins) + 1e-9)
  ab = ctask.to_ab(logits, l, decoding="mean")
  assert ab.shape == (BATCH, SIZE, SIZE, 2)
  with pytest.raises(ValueError, match="lab, rgb"):
    task_lib.ColorTask(target_space="hsv")
  with pytest.raises(ValueError, match="needs ab bins"):
    task_lib.ColorTask(head="classification")


def test_bfloat16_compute_trains_with_float32_params():
  model = get_model("unet", head="regression", features=(4, 8), dtype=jnp.bfloat16)
  tx = optax.adam(1e-2)
  state = steps.init_state(steps.make_rng(0), model=model, tx=tx, image_shape=(1, SIZE, SIZE, 3))
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=task_lib.ColorTask(),
                                   loss_fn=objective.single("l2")))
  batch = {"image": _images(0), "mask": np.ones(BATCH, bool)}
  losses_ = []
  for _ in range(8):
    state, m = step(state, batch)
    losses_.append(float(m["loss"]))
  assert all(np.isfinite(losses_)) and losses_[-1] < losses_[0]
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}


def _random_classifier():
  """(variables, model, task): a small random U-Net with the 313-bin head, for the inference path's tests."""
  model = get_model("unet", head="classification", features=(4, 8))
  task = task_lib.ColorTask(head="classification", bins=quantize.make_bins())
  state = steps.init_state(steps.make_rng(0), model=model, tx=optax.sgd(0.1), image_shape=(1, SIZE, SIZE, 3))
  return {"params": state.params, "batch_stats": state.batch_stats}, model, task


def test_predict_ab_is_the_inference_path():
  """steps.predict_ab = L -> model -> the task's decoder, at the photo's size or at `size` (RGB resized on device,
  ab upsampled back); the temperature is a traced argument (one program for any value)."""
  variables, model, task = _random_classifier()
  images = _images(3)
  l = color.rgb_to_l_ab(images)[0]
  direct = steps.predict_ab_from_l(variables, l, model=model, task=task)
  np.testing.assert_array_equal(np.asarray(steps.predict_ab(variables, images, model=model, task=task)),
                                np.asarray(direct))
  small = jnp.clip(jax.image.resize(color.to_float_rgb(images), (BATCH, SIZE // 2, SIZE // 2, 3), "cubic",
                                    antialias=True), 0.0, 1.0)
  expect = task_lib.upsample(steps.predict_ab_from_l(variables, color.rgb_to_l_ab(small)[0], model=model,
                                                     task=task), SIZE, SIZE)
  got = steps.predict_ab(variables, images, model=model, task=task, size=SIZE // 2)
  assert got.shape == (BATCH, SIZE, SIZE, 2)
  np.testing.assert_allclose(np.asarray(got), np.asarray(expect), atol=1e-4)  # ab in [-110, 110]: float32 ulps
  jitted = jax.jit(functools.partial(steps.predict_ab, model=model, task=task))
  # jit vs eager: the same math fused differently; the annealed mean sums 313 bin centers (|ab| <= 110) with
  # float32 weights: at most ~110 * 313 * 2**-24 ~ 2e-3 apart (worst case, ~1e-4 typically).
  for t in (0.38, 1.0):
    np.testing.assert_allclose(np.asarray(jitted(variables, images, None, t)),
                               np.asarray(steps.predict_ab_from_l(variables, l, model=model, task=task,
                                                                  temperature=t)), atol=2e-3)
  assert jitted._cache_size() == 1  # one program for both temperatures


def test_flip_averages_the_mirrored_prediction():
  """flip=True (config.inference_flip): the mean of the photo's prediction and the mirrored photo's (hints mirrored
  with it), mirrored back; so the result is mirror-equivariant, which the network alone is not."""
  variables, model, task = _random_classifier()
  images = _images(4)
  mirror = lambda x: np.asarray(x)[:, :, ::-1]
  predict = lambda im, **kw: np.asarray(steps.predict_ab(variables, im, model=model, task=task, **kw))
  plain, plain_mirrored = predict(images), predict(np.ascontiguousarray(mirror(images)))
  flipped = predict(images, flip=True)
  # Annealed means of 313 bins (|ab| <= 110, float32): ~110 * 313 * 2**-24 ~ 2e-3 at worst between programs that
  # batch the photos differently (B vs 2B).
  np.testing.assert_allclose(flipped, 0.5 * (plain + mirror(plain_mirrored)), atol=2e-3)
  np.testing.assert_allclose(predict(np.ascontiguousarray(mirror(images)), flip=True), mirror(flipped), atol=2e-3)
  assert np.abs(plain_mirrored - mirror(plain)).max() > 0.1  # a random network is not equivariant by itself
  size = SIZE // 2  # with the resize, ab upsampled back: the same identity
  np.testing.assert_allclose(predict(images, size=size, flip=True),
                             0.5 * (predict(images, size=size) + mirror(predict(np.ascontiguousarray(mirror(images)),
                                                                               size=size))), atol=2e-3)


def test_propagation_corrects_a_blend_of_the_network_with_and_without_hints():
  """With a Propagation of network_share < 1, predict_ab also runs the network without the hints (one call on
  2B photos) and corrects unhinted + share (hinted - unhinted); share 1 corrects the hinted colors alone."""
  model = get_model("siggraph17", width=1 / 16)
  task = task_lib.ColorTask(head="regression")
  images = np.random.default_rng(5).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
  l, ab = color.rgb_to_l_ab(images)
  given = hints_lib.per_photo(hints_lib.HintSampler(), hints_lib.photo_keys(0, images), ab, 3).at[1].set(0.0)
  variables = model.init(jax.random.key(0), l, train=False, hints=given)
  # Random weights everywhere (the hint layers start near zero): a network that responds to its hints.
  variables = jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.key(x.size), x.shape), variables)
  net = lambda x, h: steps.predict_ab_from_l(variables, x, model=model, task=task, hints=h)
  hinted, unhinted = net(l, given), net(l, jnp.zeros_like(given))
  assert np.abs(np.asarray(hinted - unhinted)[0]).max() > 1.0
  # Photo 1 has no hints. Batches that differ elsewhere, or one call on 2B photos against two on B: the same
  # convolutions batched differently, float32 ulps of ab (|ab| <= 110).
  np.testing.assert_allclose(np.asarray(hinted[1]), np.asarray(unhinted[1]), atol=1e-3)
  both = net(jnp.concatenate([l, l]), jnp.concatenate([given, jnp.zeros_like(given)]))
  np.testing.assert_allclose(np.asarray(both), np.asarray(jnp.concatenate([hinted, unhinted])), atol=1e-3)
  for share in (0.5, 1.0):
    p = hint_propagation.Propagation(network_share=share)
    got = steps.predict_ab(variables, images, given, model=model, task=task, propagation=p)
    want = p(both[:2], given, l, both[2:]) if share < 1 else p(hinted, given, l)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    np.testing.assert_allclose(np.asarray(got[1]), np.asarray(unhinted[1]), atol=1e-3)  # no hints: unchanged
