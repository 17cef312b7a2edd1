"""The adversarial term: spectral normalization against an SVD oracle, the losses against hand-computed values,
finite-difference gradients, the discriminator's and the colorizer's short training runs, config errors."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from configs import unet_reg
from jaxcolor import builders, losses, steps
from jaxcolor.losses import adversarial, objective
from jaxcolor import task as task_lib
from jaxcolor.losses.inputs import LossInputs
from jaxcolor.models import get_model

TASK = task_lib.ColorTask()  # regression of ab / 110


def _photos(seed: int, b: int = 4, size: int = 16) -> np.ndarray:
  """Colorful uint8 photos: smooth gradients of random hues."""
  rng = np.random.default_rng(seed)
  yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
  base = rng.uniform(0.2, 0.8, (b, 1, 1, 3)) + 0.4 * np.stack([yy, xx, 1 - yy], -1)[None] * rng.uniform(-1, 1, (b, 1, 1, 3))
  return np.clip(base * 255, 0, 255).astype(np.uint8)


def _inputs(outputs, images, state, mask=None, task=TASK) -> LossInputs:
  l, ab, target, w = task.batch_targets(jnp.asarray(images))
  return LossInputs(outputs=outputs, images=jnp.asarray(images), l=l, ab=ab, target=target, pixel_weights=w,
                    mask=mask, step=jnp.zeros((), jnp.int32), rng=steps.make_rng(0), task=task,
                    loss_state={"adversarial": state})


def test_spectral_conv_divides_by_the_largest_singular_value():
  conv = adversarial.SpectralConv(6, kernel_size=(3, 3))
  x = jax.random.normal(jax.random.key(1), (1, 5, 5, 4))
  variables = conv.init({"params": jax.random.key(0)}, x, update_stats=False)
  kernel = variables["params"]["kernel"]
  apply = jax.jit(lambda v: conv.apply(v, x, update_stats=True, mutable=["spectral"]))
  for _ in range(50):  # power iteration: u converges to the top right-singular vector
    y, upd = apply(variables)
    variables = {"params": variables["params"], "spectral": upd["spectral"]}
  sigma, _ = adversarial.spectral_sigma(kernel, variables["spectral"]["u"])
  w = np.asarray(kernel, np.float64).reshape(-1, 6)
  np.testing.assert_allclose(float(sigma), np.linalg.svd(w, compute_uv=False)[0], rtol=1e-4)
  plain = jax.lax.conv_general_dilated(x, kernel / sigma, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(conv.apply(variables, x, update_stats=False), plain, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", adversarial.KINDS)
def test_losses_against_hand_computed_values(kind):
  """Zero kernels and a final bias b make every patch logit b, so the losses have closed forms."""
  term = adversarial.Adversarial(kind=kind, width=4, layers=2, spectral_norm=False)
  state = term.init(jax.random.key(0))
  b = 0.7
  params = jax.tree.map(jnp.zeros_like, state["params"])
  params["SpectralConv_3"]["bias"] = jnp.full((1,), b)
  state = {**state, "params": params}
  images = _photos(0)
  x = _inputs(jnp.zeros((4, 16, 16, 2)), images, state, mask=np.array([1, 1, 1, 0], bool))
  softplus = lambda z: np.log1p(np.exp(z))
  want_g = softplus(-b) if kind == "non_saturating" else -b
  want_d = softplus(-b) + softplus(b) if kind == "non_saturating" else max(0, 1 - b) + max(0, 1 + b)
  np.testing.assert_allclose(term(x, state), want_g, rtol=1e-6)
  d_loss, _ = term.discriminator_loss(params, state, x, x.pred_ab())
  np.testing.assert_allclose(d_loss, want_d, rtol=1e-6)


def test_real_and_fake_are_judged_independently():
  """One call over [real; fake] gives each half the logits it gets alone (no batch coupling)."""
  term = adversarial.Adversarial(width=4, layers=2)
  state = term.init(jax.random.key(1))
  x = jax.random.normal(jax.random.key(2), (4, 16, 16, 3))
  apply = lambda z: term.net.apply({"params": state["params"], "spectral": state["spectral"]}, z)
  np.testing.assert_allclose(apply(x)[:2], apply(x[:2]), rtol=1e-5, atol=1e-6)


def test_gradients_match_finite_differences():
  term = adversarial.Adversarial(width=4, layers=2)
  state = term.init(jax.random.key(3))
  images = _photos(4, b=2, size=8)
  out = jnp.asarray(np.random.default_rng(5).normal(0, 0.2, (2, 8, 8, 2)), jnp.float32)
  check_grads(lambda z: term(_inputs(z, images, state), state), (out,), order=1, modes=("rev",), eps=1e-2,
              atol=2e-3, rtol=2e-2)
  x = _inputs(out, images, state)
  # D's gradient holds the power-iteration vectors constant: exact once they have converged (the derivative of
  # the top singular value is v u^T), so converge them first
  update = jax.jit(lambda st: term.discriminator_loss(st["params"], st, x, x.pred_ab())[1])
  for _ in range(100):
    state = {**state, "spectral": update(state)}
  d_loss = jax.jit(lambda p: term.discriminator_loss(p, state, x, x.pred_ab())[0])
  # a direction scaled to each weight's spread (~0.02), a 0.1% step: spectral norm is far from linear
  direction = jax.tree.map(lambda a: jnp.asarray(np.random.default_rng(a.size).normal(size=a.shape)
                                                 * (np.std(a) + 1e-3), jnp.float32), state["params"])
  eps = 1e-3
  shifted = lambda sign: jax.tree.map(lambda a, b: a + sign * eps * b, state["params"], direction)
  numeric = (float(d_loss(shifted(1))) - float(d_loss(shifted(-1)))) / (2 * eps)
  grads = jax.grad(d_loss)(state["params"])
  analytic = sum(float(jnp.sum(g * b)) for g, b in zip(jax.tree.leaves(grads), jax.tree.leaves(direction)))
  assert analytic == pytest.approx(numeric, rel=0.02)


def _train(obj: objective.Objective, n: int, lr: float = 3e-3, freeze_d: bool = False):
  """Per-step metrics of n steps of a tiny U-Net regression with `obj` on one fixed batch."""
  model = get_model("unet", head="regression", features=(4, 8))
  tx = optax.adam(lr)
  state = steps.init_state(steps.make_rng(0), model=model, tx=tx, image_shape=(1, 16, 16, 3))
  state = state.replace(loss_state=obj.init_state(jax.random.key(7)))
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=TASK, loss_fn=obj))
  batch = {"image": _photos(8), "mask": np.ones(4, bool)}
  out = []
  for _ in range(n):
    new, m = step(state, batch)
    state = new.replace(loss_state=state.loss_state) if freeze_d else new
    out.append({k: float(v) for k, v in m.items()})
  return out, state


def test_discriminator_learns_and_the_colorizer_then_fools_it():
  """The step trains D (its loss on real vs the gray start falls); with D then frozen, the
  colorizer's adversarial term falls as the model learns to color like the truth."""
  obj = objective.Objective((("adversarial", 1.0, losses.get_term("adversarial", width=8, layers=2,
                                                                   learning_rate=2e-3)),))
  hist, state = _train(obj, 40, lr=0.0)  # lr 0: the colorizer stays gray, D alone learns
  d = [h["loss/adversarial_d"] for h in hist]
  assert np.mean(d[-5:]) < 0.6 * d[0], d[::5]
  assert all(np.isfinite(h["loss"]) and h["finite"] for h in hist)

  model = get_model("unet", head="regression", features=(4, 8))
  tx = optax.adam(3e-3)
  fresh = steps.init_state(steps.make_rng(0), model=model, tx=tx, image_shape=(1, 16, 16, 3))
  state = fresh.replace(loss_state=state.loss_state)
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=TASK, loss_fn=obj))
  batch = {"image": _photos(8), "mask": np.ones(4, bool)}
  g = []
  for _ in range(30):
    new, m = step(state, batch)
    state = new.replace(loss_state=state.loss_state)  # D frozen
    g.append(float(m["loss"]))
  assert g[-1] < 0.7 * g[0], g[::5]


def test_config_errors_name_the_option():
  config = unet_reg.get_config("local")
  config.losses.l2 = 1.0
  config.losses.adversarial = 0.01
  builders.check_config(config)
  config.loss_options.adversarial.kind = "wasserstein"
  with pytest.raises(ValueError, match="adversarial kind 'wasserstein'.*non_saturating, hinge"):
    builders.check_config(config)
  config.loss_options.adversarial.kind = "hinge"
  config.loss_options.adversarial.layers = 0
  with pytest.raises(ValueError, match="layers >= 1"):
    builders.check_config(config)
