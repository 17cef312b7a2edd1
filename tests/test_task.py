"""The whole learning path (targets, rebalancing weights, loss, step, decoding) on synthetic scenes whose colors
follow from L: blue sky over textured green grass. A run this easy must learn both colors within a few dozen
steps, under every head; a wrong target, weight or decoding shows up as a brown or gray cast."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcolor import steps
from jaxcolor.colorspace import color, prior, quantize
from jaxcolor.losses import objective
from jaxcolor import task as task_lib
from jaxcolor.models import get_model

SKY, GRASS = (95, 150, 225), (60, 135, 40)  # sRGB: ab about (2, -36) and (-37, 41)


def scenes(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(n, size, size, 3) uint8 photos: smooth sky above a random horizon, noisy grass below; and the sky mask."""
  rng = np.random.default_rng(seed)
  rows = np.arange(size)[None, :, None]
  horizon = rng.integers(size // 4, 3 * size // 4, n)[:, None, None]
  sky = rows < horizon  # (n, size, 1)
  sky = np.broadcast_to(sky, (n, size, size))
  base = np.where(sky[..., None], np.array(SKY), np.array(GRASS)).astype(np.float32)
  texture = rng.normal(0, 1, (n, size, size, 1)) * np.where(sky[..., None], 3.0, 25.0)
  return np.clip(base + texture, 0, 255).astype(np.uint8), sky


@functools.cache  # the L2 run serves two tests
def _train(head: str, loss: str, *, rebalance: bool = True, num_steps: int = 150, size: int = 32):
  bins = quantize.make_bins() if head == "classification" else None
  weights = None
  if bins is not None and rebalance:
    images, _ = scenes(64, size, seed=1)
    p = prior.estimate_prior([color.rgb_to_lab(images)[..., 1:]], bins)
    weights = np.asarray(prior.rebalance_weights(p, 0.5))
  task = task_lib.ColorTask(head=head, bins=bins, class_weights=weights)
  model = get_model("unet", head=head, features=(8, 16))
  tx = optax.adam(3e-3)
  state = steps.init_state(steps.make_rng(0), model=model, tx=tx, image_shape=(1, size, size, 3))
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=task, loss_fn=objective.single(loss)))
  for i in range(num_steps):
    images, _ = scenes(16, size, seed=100 + i)
    state, _ = step(state, {"image": jnp.asarray(images), "mask": jnp.ones((16,), bool)})
  images, sky = scenes(16, size, seed=7)
  l, ab = color.rgb_to_l_ab(images)
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  pred = np.asarray(steps.predict_ab_from_l(variables, l, model=model, task=task))
  return pred, np.asarray(ab), sky


@pytest.mark.parametrize("head,loss,rebalance", [("classification", "cross_entropy", True),
                                                 ("classification", "cross_entropy", False),
                                                 ("regression", "l2", False), ("regression", "l1", False)])
def test_learns_blue_sky_and_green_grass(head, loss, rebalance):
  pred, truth, sky = _train(head, loss, rebalance=rebalance)
  for name, where in (("sky", sky), ("grass", ~sky)):
    got, want = pred[where].mean(0), truth[where].mean(0)
    # Within a quarter of the way from gray to the true color: the cast of an untrained rebalanced
    # classifier (about (3, 14)) or a gray prediction both fail.
    assert np.linalg.norm(got - want) < 0.25 * np.linalg.norm(want), f"{name}: predicted ab {got}, true {want}"


def test_l2_regression_does_not_oversaturate():
  """L2 learns a conditional mean: never more chroma than the truth on average (here +10% for noise)."""
  pred, truth, _ = _train("regression", "l2", rebalance=False)
  chroma = lambda ab: np.linalg.norm(ab, axis=-1).mean()
  assert chroma(pred) <= 1.1 * chroma(truth), (chroma(pred), chroma(truth))
