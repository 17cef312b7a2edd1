"""Composed objectives and the terms on decoded colors: values against float64 / independent oracles, finite-
difference gradients, short training runs that lower them, config checks before compilation."""
import functools
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import skimage.color
from jax.test_util import check_grads

from configs import unet_cls, unet_reg
from jaxcolor import builders, losses, steps
from jaxcolor.colorspace import color, quantize
from jaxcolor.evaluation import metrics
from jaxcolor.losses import objective
from jaxcolor import task as task_lib
from jaxcolor.losses.inputs import LossInputs
from jaxcolor.models import get_model

BINS = quantize.make_bins()


def _photos(seed: int, b: int = 2, size: int = 8) -> np.ndarray:
  """Smooth colorful uint8 photos (B, size, size, 3)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
  base = rng.uniform(0.1, 0.9, (b, 1, 1, 3)) + 0.3 * np.stack([yy, xx, 1 - yy], -1)[None] * rng.uniform(-1, 1, (b, 1, 1, 3))
  return np.clip(base * 255, 0, 255).astype(np.uint8)


def _inputs(outputs, images, task, mask=None) -> LossInputs:
  l, ab, target, w = task.batch_targets(jnp.asarray(images))
  return LossInputs(outputs=outputs, images=jnp.asarray(images), l=l, ab=ab, target=target, pixel_weights=w,
                    mask=mask, step=jnp.zeros((), jnp.int32), rng=steps.make_rng(0), task=task)


def _cls_task(weights=None) -> task_lib.ColorTask:
  return task_lib.ColorTask(head="classification", bins=BINS, class_weights=weights)


@pytest.mark.parametrize("name, power", [("l1_decoded", 1), ("l2_decoded", 2)])
def test_decoded_pixel_losses_match_a_float64_oracle(name, power):
  images = _photos(0)
  logits = np.random.default_rng(1).normal(0, 3, (2, 8, 8, BINS.num_bins)).astype(np.float32)
  x = _inputs(jnp.asarray(logits), images, _cls_task())
  got = float(losses.get_term(name, temperature=0.5)(x))
  z = logits.astype(np.float64) / 0.5
  p = np.exp(z - z.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  ab_pred = p @ BINS.centers.astype(np.float64)
  ab_true = skimage.color.rgb2lab(images)[..., 1:]  # float64, independent of jaxcolor.colorspace.color
  want = np.mean(np.abs(ab_pred - ab_true) ** power / 110.0 ** power)
  # float32 Lab and softmax: relative error ~1e-5 per pixel on values ~0.1-0.5 (ab ~10-50 units)
  assert got == pytest.approx(want, rel=1e-4)


def test_decoded_loss_masks_padding_and_rebalances():
  images = _photos(2, b=3)
  logits = jnp.asarray(np.random.default_rng(3).normal(size=(3, 8, 8, BINS.num_bins)), jnp.float32)
  full = losses.get_term("l1_decoded")(_inputs(logits[:2], images[:2], _cls_task()))
  padded = losses.get_term("l1_decoded")(_inputs(logits, images, _cls_task(), mask=np.array([1, 1, 0], bool)))
  np.testing.assert_allclose(padded, full, rtol=1e-6)  # the padded example contributes nothing
  weights = np.full(BINS.num_bins, 2.0, np.float32)  # uniform weights 2: the rebalanced loss doubles
  x = _inputs(logits, images, _cls_task(weights))
  np.testing.assert_allclose(losses.get_term("l1_decoded", rebalanced=True)(x),
                             2 * losses.get_term("l1_decoded")(x), rtol=1e-6)


def test_colorfulness_term_against_the_metric():
  images = _photos(4)
  truth_cf = np.asarray(metrics.colorfulness(jnp.asarray(images)))
  gray = jnp.zeros((2, 8, 8, 2))  # regression of ab: a zero output is the gray photo
  x = _inputs(gray, images, task_lib.ColorTask())
  # CF(gray) = sqrt(eps) + 0.3 sqrt(eps) with eps = 1e-3 in the term: 0.041, next to CF(truth) of tens
  np.testing.assert_allclose(losses.get_term("colorfulness")(x), np.mean(truth_cf - 1.3 * np.sqrt(1e-3)) / 100,
                             rtol=1e-3)
  ab_true = color.ab_to_unit(color.rgb_to_lab(images)[..., 1:])
  perfect = losses.get_term("colorfulness")(_inputs(ab_true, images, task_lib.ColorTask()))
  assert float(perfect) < 1e-3  # only the eps and float rounding of the Lab round trip remain


@pytest.mark.parametrize("name", ["l2_decoded", "colorfulness"])
def test_term_gradients_match_finite_differences(name):
  images = _photos(5, b=1, size=4)
  task = _cls_task()
  logits = jnp.asarray(np.random.default_rng(6).normal(0, 0.5, (1, 4, 4, BINS.num_bins)), jnp.float32)
  term = losses.get_term(name)
  check_grads(lambda z: term(_inputs(z, images, task)), (logits,), order=1, modes=("rev",), eps=1e-2,
              atol=2e-3, rtol=2e-2)


def _train(loss_fn, head: str, n: int = 30):
  """Loss values of n SGD steps of a tiny U-Net on one fixed batch."""
  model = get_model("unet", head=head, num_bins=BINS.num_bins, features=(4, 8))
  task = _cls_task() if head == "classification" else task_lib.ColorTask()
  tx = optax.adam(3e-3)
  state = steps.init_state(steps.make_rng(0), model=model, tx=tx, image_shape=(1, 16, 16, 3))
  state = state.replace(loss_state=loss_fn.init_state(jax.random.key(1)))  # {} without stateful terms
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=task, loss_fn=loss_fn))
  batch = {"image": _photos(7, b=4, size=16), "mask": np.ones(4, bool)}
  out = []
  for _ in range(n):
    state, m = step(state, batch)
    out.append({k: float(v) for k, v in m.items()})
  return out


# colorfulness from a classification head: a regression head starts gray (zero projection), where the term's
# gradient is zero (the variance and the mean of a constant photo have zero derivative), so it needs a pixel term.
@pytest.mark.parametrize("name, head", [("l1_decoded", "classification"), ("colorfulness", "classification")])
def test_training_lowers_the_term(name, head):
  hist = _train(objective.single(name), head)
  assert all(np.isfinite(h["loss"]) for h in hist)
  assert hist[-1]["loss"] < 0.7 * hist[0]["loss"], [h["loss"] for h in hist[::5]]


def test_composed_objective_is_the_weighted_sum_and_logs_every_term():
  config = unet_cls.get_config("local")
  config.losses.l1_decoded = 0.25  # added to config.loss (cross-entropy, weight unset: 1)
  config.loss_options.l1_decoded.temperature = 0.5
  builders.check_config(config)
  obj = builders.build_loss(config)
  assert obj.names == ("cross_entropy", "l1_decoded") and not obj.head_input  # the decoded term needs logits
  images = _photos(8)
  logits = jnp.asarray(np.random.default_rng(9).normal(size=(2, 8, 8, BINS.num_bins)), jnp.float32)
  x = _inputs(logits, images, _cls_task())
  total, logged = obj(x)
  ce = losses.get_term("cross_entropy")(x)
  l1d = losses.get_term("l1_decoded", temperature=0.5)(x)
  np.testing.assert_allclose(total, ce + 0.25 * l1d, rtol=1e-6)
  np.testing.assert_allclose(logged["loss/l1_decoded"], l1d, rtol=1e-6)
  np.testing.assert_allclose(logged["loss/l1_decoded_weighted"], 0.25 * l1d, rtol=1e-6)
  assert set(logged) == {"loss/cross_entropy", "loss/cross_entropy_weighted", "loss/l1_decoded",
                         "loss/l1_decoded_weighted"}
  hist = _train(obj, "classification", n=3)
  assert {"loss/cross_entropy", "loss/l1_decoded_weighted"} <= set(hist[0])


def test_single_loss_configs_build_the_same_objective_as_before():
  """config.loss alone: one term at weight 1 whose total is the kernel's value itself (no multiply), with
  config.loss_kwargs as its options, and the fused head kept for cross-entropy."""
  config = unet_reg.get_config("local")
  config.loss = "huber"
  config.loss_kwargs.delta = 0.2
  obj = builders.build_loss(config)
  assert obj.names == ("huber",)
  images = _photos(10)
  out = jnp.asarray(np.random.default_rng(11).normal(0, 0.3, (2, 8, 8, 2)), jnp.float32)
  x = _inputs(out, images, task_lib.ColorTask())
  total, logged = obj(x)
  assert set(logged) == {"loss/huber", "loss/huber_weighted"}  # logged with one term too
  assert np.array_equal(np.asarray(total), np.asarray(losses.huber(out, x.target, delta=0.2)))
  assert np.array_equal(np.asarray(logged["loss/huber"]), np.asarray(total))
  assert np.array_equal(np.asarray(logged["loss/huber_weighted"]), np.asarray(total))
  assert builders.build_loss(unet_cls.get_config("local")).head_input
  hist = _train(obj, "regression", n=1)
  assert hist[0]["loss/huber"] == hist[0]["loss"] == hist[0]["loss/huber_weighted"]


def test_config_loss_is_one_weighted_term():
  """Its weight is config.losses.<config.loss> (unset: 1); 0 removes it, leaving the other terms; a term weighted
  0 is not added; no term left fails before compilation, saying how to fix it."""
  config = unet_cls.get_config("local")
  assert objective.terms(config) == (("cross_entropy", 1.0, {}),)
  config.losses.cross_entropy, config.losses.l1_decoded, config.losses.l2_decoded = 0.0, 1.0, 0.0
  builders.check_config(config)
  assert objective.terms(config) == (("l1_decoded", 1.0, {"rebalanced": False}),)
  assert builders.build_loss(config).names == ("l1_decoded",)
  config.losses.cross_entropy = 2.0
  assert [(n, w) for n, w, _ in objective.terms(config)] == [("cross_entropy", 2.0), ("l1_decoded", 1.0)]
  config.losses.cross_entropy, config.losses.l1_decoded = 0.0, None
  with pytest.raises(ValueError, match=r"no loss term left: config.losses.cross_entropy=0 removes "
                                       r"config.loss='cross_entropy'.*registered losses: adversarial, colorfulness"):
    builders.check_config(config)
  with pytest.raises(ValueError, match="no loss term left"):
    builders.build_loss(config)


def test_term_options_overlay():
  """config.loss takes config.loss_options.<name> overlaid by config.loss_kwargs; the other terms their
  loss_options; options left at None are not passed (the term's default applies)."""
  config = unet_reg.get_config("local")
  config.loss = "huber"
  config.loss_options.huber.delta = 0.3
  config.losses.colorfulness = 0.5
  config.loss_options.colorfulness.eps = 0.01
  assert objective.terms(config) == (("colorfulness", 0.5, {"eps": 0.01}), ("huber", 1.0, {"delta": 0.3}))
  config.loss_kwargs.delta = 0.2
  assert dict(objective.terms(config)[1][2]) == {"delta": 0.2}
  config.loss_kwargs.eps = 0.1  # config.loss's own options only
  assert objective.terms(config)[0][2] == {"eps": 0.01}
  with pytest.raises(ValueError, match=r"loss 'huber' does not take options \['delta', 'eps'\]"):
    builders.check_config(config)


def test_unknown_loss_names_list_the_choices():
  choices = ", ".join(sorted(losses.LOSSES))
  config = unet_reg.get_config("local")
  config.losses.nope = 0.5
  with pytest.raises(ValueError, match=f"unknown loss 'nope'; choose one of: {choices}"):
    builders.check_config(config)
  config.losses.nope = None  # unset, yet no such term
  with pytest.raises(ValueError, match=re.escape(f"config.losses names ['nope']; registered losses: {choices}")):
    builders.check_config(config)
  config = unet_reg.get_config("local")
  config.loss = "nope"
  with pytest.raises(ValueError, match=f"config.loss='nope' is not valid; choose one of: {choices}"):
    builders.check_config(config)


def test_config_mistakes_fail_before_compilation(monkeypatch):
  config = unet_reg.get_config("local")
  config.losses.l1_decoded = 0.1
  with pytest.raises(ValueError, match="'l1_decoded' needs head 'classification'.*losses for regression: "
                                       "adversarial, colorfulness, huber, l1, l2, perceptual"):
    builders.check_config(config)
  config = unet_cls.get_config("local")
  config.losses.cross_entropy = -1.0
  with pytest.raises(ValueError, match="config.losses.cross_entropy=-1.0: a weight must be >= 0"):
    builders.check_config(config)
  config = unet_reg.get_config("local")
  config.target_space = "rgb"
  config.model_kwargs.target = "rgb"
  monkeypatch.setitem(losses.LOSSES, "needs_lab", losses.LossSpec(lambda x: 0.0, ("regression",),
                                                                  needs=("lab_target",)))
  config.losses = {"needs_lab": 1.0}
  with pytest.raises(ValueError, match="loss 'needs_lab' needs lab_target: ab targets"):
    builders.check_config(config)
  config = unet_cls.get_config("local")
  config.losses.l1_decoded = 1.0
  config.loss_options.l1_decoded = {"sigma": 2.0}
  with pytest.raises(ValueError, match="loss 'l1_decoded' does not take options \\['sigma'\\]"):
    builders.check_config(config)


def _readme_blocks() -> list[str]:
  text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
  section = text[text.index("## Extending"):text.index("## Experiments")]
  return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_extending_examples_train(monkeypatch, tmp_path):
  """The README's four terms, as printed (at most 20 lines each), register and take training steps."""
  from jaxcolor.models import keras_weights
  from jaxcolor.models.vgg import VGG16Encoder
  blocks = _readme_blocks()
  assert len(blocks) == 5  # the imports, then the four kinds of term
  assert all(len([line for line in b.splitlines() if line.strip()]) <= 20 for b in blocks[1:])
  monkeypatch.setattr(losses, "LOSSES", dict(losses.LOSSES))  # the examples register into a copy
  namespace: dict = {}
  for block in blocks:
    exec(block, namespace)  # pylint: disable=exec-used
  vgg = VGG16Encoder(depths=(2, 2))
  path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
  keras_weights.save_keras_h5(path, vgg, vgg.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  cases = {"my_l1_decoded": ("classification", {}), "my_colorfulness": ("classification", {}),
           "my_perceptual": ("regression", {"weights": str(path)}), "my_hinge_gan": ("regression", {})}
  for name, (head, options) in cases.items():
    obj = objective.single(name, **options)
    hist = _train(obj, head, n=3)
    assert all(np.isfinite(h["loss"]) for h in hist), name
    if name == "my_hinge_gan":
      assert "loss/my_hinge_d" in hist[0]

