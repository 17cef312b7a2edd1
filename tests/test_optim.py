"""Tests for jaxcolor.optim: optimizers vs hand-written optax chains, schedules, plateau, clipping, freezing."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxcolor import defaults, optim


def _cfg(**kw) -> ml_collections.ConfigDict:
  """A run config: jaxcolor.defaults with `kw` put in as given (unchecked types, as code may build one)."""
  return ml_collections.ConfigDict({**defaults.get_config().to_dict(), **kw})


def _params():
  return {"encoder": {"w": jnp.arange(6.0).reshape(2, 3) / 6 - 0.4},
          "decoder": {"w": jnp.linspace(-1.0, 1.0, 4), "b": jnp.array([0.3])}}


def _grads(params):
  """Deterministic, param-dependent gradients of a quadratic with a cross term."""
  return jax.grad(lambda p: sum(jnp.sum((x - 0.1) ** 2 + 0.3 * x) for x in jax.tree.leaves(p)))(params)


def _run(tx, params, steps, **extra):
  state = tx.init(params)
  for _ in range(steps):
    updates, state = tx.update(_grads(params), state, params, **extra)
    params = optax.apply_updates(params, updates)
  return params, state


SCHED = optax.warmup_cosine_decay_schedule(0.0, 0.05, 2, 6, end_value=0.005)


@pytest.mark.parametrize("config, reference", [
    (dict(learning_rate=0.05, b2=0.99), optax.adam(0.05, 0.9, 0.99)),
    (dict(learning_rate=0.05, weight_decay=0.1), optax.chain(optax.add_decayed_weights(0.1), optax.adam(0.05))),
    (dict(optimizer="adamw", learning_rate=0.05, b1=0.8, weight_decay=0.1),
     optax.adamw(0.05, 0.8, 0.999, weight_decay=0.1)),
    (dict(optimizer="sgd", learning_rate=0.1, nesterov=True), optax.sgd(0.1, 0.9, nesterov=True)),
    (dict(optimizer="sgd", learning_rate=0.1, momentum=0.0, weight_decay=0.1),
     optax.chain(optax.add_decayed_weights(0.1), optax.sgd(0.1))),
    (dict(learning_rate=0.05, schedule="warmup_cosine", warmup_steps=2, total_steps=6, end_lr_factor=0.1),
     optax.adam(SCHED)),
    (dict(learning_rate=0.05, grad_clip_norm=0.5),
     optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.05))),
], ids=["adam", "adam_l2", "adamw", "sgd_nesterov", "sgd_l2", "adam_cosine", "adam_clip"])
def test_optimizer_matches_optax(config, reference):
  params = _params()
  ours, _ = _run(optim.make_optimizer(_cfg(**config)), params, 5)
  ref, _ = _run(reference, params, 5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), ours, ref)
  assert not np.allclose(ours["decoder"]["w"], params["decoder"]["w"])


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("on", ["all", "kernels"])
def test_weight_decay_on(optimizer, on):
  """With zero gradients the only update is the decay, -lr * wd * param (SGD without momentum: L2 added to the
  gradient; AdamW: Adam's direction of a zero gradient is 0), on kernels only or on every param."""
  params = {"conv": {"kernel": jnp.full((3, 3, 1, 2), 2.0), "bias": jnp.full((2,), 3.0)},
            "bn": {"scale": jnp.full((2,), 4.0), "bias": jnp.full((2,), 5.0)}}
  tx = optim.make_optimizer(_cfg(optimizer=optimizer, momentum=0.0, learning_rate=0.1, weight_decay=0.5,
                                 weight_decay_on=on), params)
  updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
  for (path, u), p in zip(jax.tree_util.tree_leaves_with_path(updates), jax.tree.leaves(params)):
    decays = on == "all" or path[-1].key == "kernel"
    np.testing.assert_allclose(u, -0.1 * 0.5 * p if decays else 0 * p, rtol=1e-6, err_msg=str(path))


def test_weight_decay_on_kernels_needs_kernels():
  with pytest.raises(ValueError, match='weight_decay_on="kernels" but no parameter is named "kernel"'):
    optim.make_optimizer(_cfg(weight_decay=0.1, weight_decay_on="kernels"), _params())
  optim.make_optimizer(_cfg(weight_decay=0.0, weight_decay_on="kernels"), _params())  # no decay: nothing to check


def test_schedules():
  lr = optim.learning_rate_fn(_cfg(learning_rate=0.1, schedule="warmup_cosine", warmup_steps=10,
                                   total_steps=110, end_lr_factor=0.01))
  assert float(lr(0)) == 0.0
  np.testing.assert_allclose([lr(5), lr(10), lr(60), lr(110), lr(200)], [0.05, 0.1, 0.0505, 0.001, 0.001],
                             rtol=1e-5)
  lr = optim.learning_rate_fn(_cfg(learning_rate=0.1, schedule="step", decay_every=4, decay_factor=0.5))
  np.testing.assert_allclose([lr(s) for s in (0, 3, 4, 7, 8, 12)], [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125])
  assert float(optim.learning_rate_fn(_cfg())(1000)) == pytest.approx(1e-3)


def test_optimizer_applies_the_logged_schedule():
  config = _cfg(optimizer="sgd", momentum=0.0, learning_rate=0.1, schedule="step", decay_every=2,
                decay_factor=0.5)
  tx, lr = optim.make_optimizer(config), optim.learning_rate_fn(config)
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  for step in range(5):
    updates, state = tx.update({"w": jnp.ones(3)}, state, params)
    np.testing.assert_allclose(updates["w"], -lr(step) * np.ones(3), rtol=1e-6)
    assert float(optim.current_lr(state, config, step)) == pytest.approx(float(lr(step)))


def test_reduce_on_plateau_lowers_lr_after_patience():
  config = _cfg(optimizer="sgd", momentum=0.0, learning_rate=0.1, schedule="reduce_on_plateau",
                plateau_patience=2, plateau_factor=0.5)
  assert optim.needs_value(config) and not optim.needs_value(_cfg())
  tx = optim.make_optimizer(config)
  params = {"w": jnp.ones(2)}
  state = tx.init(params)
  update = jax.jit(lambda s, v: tx.update({"w": jnp.ones(2)}, s, params, value=v))
  lrs = []
  for step, loss in enumerate([1.0, 0.5, 0.6, 0.7, 0.8, 0.9]):  # improves twice, then never again
    updates, state = update(state, jnp.float32(loss))
    lrs.append(float(optim.current_lr(state, config, step)))
    np.testing.assert_allclose(updates["w"], -lrs[-1], rtol=1e-6)
  np.testing.assert_allclose(lrs, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)
  assert float(optim.learning_rate_fn(config)(5)) == pytest.approx(0.1)  # the base lr


def test_clipping_bounds_update_norm():
  params = {"a": jnp.zeros(3), "b": jnp.zeros(4)}
  grads = {"a": jnp.full(3, 100.0), "b": jnp.full(4, -50.0)}
  norm = lambda t: float(optax.tree.norm(t))
  base = dict(optimizer="sgd", momentum=0.0, learning_rate=1.0)
  for clip in (0, 0.0):
    tx = optim.make_optimizer(_cfg(**base, grad_clip_norm=clip))
    assert norm(tx.update(grads, tx.init(params), params)[0]) == pytest.approx(norm(grads))
  tx = optim.make_optimizer(_cfg(**base, grad_clip_norm=2.0))
  assert norm(tx.update(grads, tx.init(params), params)[0]) == pytest.approx(2.0, rel=1e-5)


def test_frozen_mask():
  params = {"vgg": {"c1": {"kernel": jnp.ones(2)}, "c2": {"kernel": jnp.ones(2)}}, "resnet": jnp.ones(1),
            "vgg_head": jnp.ones(1), "dec": [jnp.ones(1)]}
  mask = optim.frozen_mask(params, ("vgg/c1", "resnet"))
  assert mask == {"vgg": {"c1": {"kernel": True}, "c2": {"kernel": False}}, "resnet": True,
                  "vgg_head": False, "dec": [False]}
  assert optim.frozen_mask(params, ("vgg",))["vgg_head"] is False  # whole path components only
  with pytest.raises(ValueError, match=r"\['vggg'\].*\['dec', 'resnet', 'vgg', 'vgg_head'\]"):
    optim.frozen_mask(params, ("vgg", "vggg"))


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_freeze_for_first_steps_under_jit(optimizer):
  config = _cfg(optimizer=optimizer, learning_rate=0.01, weight_decay=0.01, freeze_prefixes=("encoder",),
                freeze_steps=3, grad_clip_norm=1.0, schedule="warmup_cosine", total_steps=20)
  params0 = params = _params()
  tx = optim.make_optimizer(config, params)
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    updates, state = tx.update(_grads(params), state, params)
    return optax.apply_updates(params, updates), state, updates

  # While frozen, the decoder follows the same chain run with the encoder's gradients zeroed (frozen
  # gradients do not use the clip budget).
  ref_tx = optim.make_optimizer(_cfg(**{k: v for k, v in config.items() if not k.startswith("freeze")}))
  ref_state, ref = ref_tx.init(params), params
  for i in range(5):
    params, state, updates = step(params, state)
    g = _grads(ref)
    g["encoder"] = jax.tree.map(jnp.zeros_like, g["encoder"])
    ref_updates, ref_state = ref_tx.update(g, ref_state, ref)
    ref = optax.apply_updates(ref, ref_updates)
    if i < 3:
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), params["decoder"], ref["decoder"])
    assert not np.allclose(params["decoder"]["w"], params0["decoder"]["w"])
    if i < 3:
      np.testing.assert_array_equal(params["encoder"]["w"], params0["encoder"]["w"])
    else:
      assert np.all(params["encoder"]["w"] != params0["encoder"]["w"])


def test_freeze_first_thawed_step_is_a_fresh_adam_step():
  config = _cfg(learning_rate=0.1, freeze_prefixes=("encoder",), freeze_steps=2)
  params = _params()
  tx = optim.make_optimizer(config, params)
  state = tx.init(params)
  for _ in range(3):
    updates, state = tx.update(_grads(params), state, params)
  # At the thaw (third call) Adam's count for the encoder is 1: |update| = lr * |g| / (|g| + eps) ~ lr.
  np.testing.assert_allclose(np.abs(updates["encoder"]["w"]), 0.1, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_lr_multipliers_scale_a_prefix(optimizer):
  """The encoder's updates are exactly factor x those of the same chain without multipliers; others unchanged."""
  base = dict(optimizer=optimizer, learning_rate=0.01, schedule="warmup_cosine", warmup_steps=2, total_steps=10)
  params = _params()
  tx = optim.make_optimizer(_cfg(**base, lr_multipliers=(("encoder", 0.25),)), params)
  ref_tx = optim.make_optimizer(_cfg(**base))
  state, ref_state = tx.init(params), ref_tx.init(params)
  for _ in range(3):
    updates, state = tx.update(_grads(params), state, params)
    ref, ref_state = ref_tx.update(_grads(params), ref_state, params)
    np.testing.assert_allclose(updates["encoder"]["w"], 0.25 * ref["encoder"]["w"], rtol=1e-6)
    np.testing.assert_array_equal(updates["decoder"]["w"], ref["decoder"]["w"])
  with pytest.raises(ValueError, match=r"config.lr_multipliers prefixes \['vgg'\] match no parameter"):
    optim.make_optimizer(_cfg(**base, lr_multipliers=(("vgg", 0.1),)), params)
  with pytest.raises(ValueError, match="needs params"):
    optim.make_optimizer(_cfg(**base, lr_multipliers=(("encoder", 0.1),)))


@pytest.mark.parametrize("changes, match", [
    (dict(lr_multipliers=(("encoder", -1.0),)), r"config.lr_multipliers must be \(\(prefix, factor >= 0\)"),
    (dict(lr_multipliers=("encoder", 0.3)), "config.lr_multipliers must be"),
    (dict(optimizer="adagrad"), r"config.optimizer 'adagrad'.*\['adam', 'adamw', 'sgd'\]"),
    (dict(schedule="cosine"), r"'cosine'.*\['constant', 'reduce_on_plateau', 'step', 'warmup_cosine'\]"),
    (dict(learning_rate=-1e-3), "config.learning_rate must be a number in \\(0"),
    (dict(learning_rate=0.0), "config.learning_rate"),
    (dict(schedule="warmup_cosine", warmup_steps=200, total_steps=100), "config.warmup_steps .*200"),
    (dict(schedule="warmup_cosine", total_steps=0), "config.total_steps must be an int in \\[1"),
    (dict(schedule="step"), "config.decay_every is required"),
    (dict(schedule="step", decay_every=10, decay_factor=0.0), "config.decay_factor"),
    (dict(schedule="reduce_on_plateau", plateau_factor=1.0), "config.plateau_factor"),
    (dict(b2=1.0), "config.b2"),
    (dict(weight_decay=-0.1), "config.weight_decay"),
    (dict(weight_decay_on="norms"), r"config.weight_decay_on 'norms'.*\['all', 'kernels'\]"),
    (dict(grad_clip_norm=-1.0), "config.grad_clip_norm"),
    (dict(freeze_steps=2.5, freeze_prefixes=("encoder",)), "config.freeze_steps must be an int"),
    (dict(freeze_steps=3), "needs config.freeze_prefixes"),
    (dict(freeze_steps=3, freeze_prefixes="encoder"), "tuple of non-empty strings"),
])
def test_bad_configs_raise(changes, match):
  with pytest.raises(ValueError, match=match):
    optim.check_optim_config(_cfg(**changes))
  with pytest.raises(ValueError, match=match):
    optim.make_optimizer(_cfg(**changes), _params())


def test_freeze_prefix_errors():
  config = _cfg(freeze_prefixes=("encoder", "vgg"), freeze_steps=3)
  with pytest.raises(ValueError, match=r"\['vgg'\] match no parameter.*\['decoder', 'encoder'\]"):
    optim.make_optimizer(config, _params())
  with pytest.raises(ValueError, match=r"\['vgg'\] match no parameter"):
    optim.check_optim_config(config, _params())
  with pytest.raises(ValueError, match="needs params"):
    optim.make_optimizer(_cfg(freeze_prefixes=("encoder",), freeze_steps=3))
  optim.check_optim_config(config)  # without params only the form of the prefixes is checked
