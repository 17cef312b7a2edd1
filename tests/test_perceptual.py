"""The perceptual term: feature distances against Keras' own VGG16 on the same weights file, gradients,
frozen weights through training, a short run that lowers it, config errors before compilation."""
import functools

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import skimage.color

from configs import unet_reg
from jaxcolor import builders, losses, steps
from jaxcolor.losses import objective, perceptual
from jaxcolor import task as task_lib
from jaxcolor.losses.inputs import LossInputs
from jaxcolor.models import get_model
from jaxcolor.models.keras_weights import CAFFE_MEAN_BGR

keras = pytest.importorskip("keras")
legacy_h5 = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
TASK = task_lib.ColorTask()
LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3")


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
  """(Keras VGG16 with random weights, the path of those weights in the layout of Keras' download file)."""
  model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
  rng = np.random.default_rng(0)
  for w in model.weights:
    shape = tuple(w.shape)
    fan_in = np.prod(shape[:-1]) if len(shape) > 1 else 1
    w.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.1, shape).astype(np.float32))
  path = tmp_path_factory.mktemp("vgg") / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
  with h5py.File(path, "w") as f:
    legacy_h5.save_weights_to_hdf5_group(f, model)
  return model, str(path)


def _photos(seed: int, b: int = 2, size: int = 32) -> np.ndarray:
  rng = np.random.default_rng(seed)
  yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
  base = rng.uniform(0.2, 0.8, (b, 1, 1, 3)) + 0.4 * np.stack([yy, xx, 1 - yy], -1)[None] * rng.uniform(-1, 1, (b, 1, 1, 3))
  return np.clip(base * 255, 0, 255).astype(np.uint8)


def _inputs(outputs, images, state) -> LossInputs:
  l, ab, target, w = TASK.batch_targets(jnp.asarray(images))
  return LossInputs(outputs=outputs, images=jnp.asarray(images), l=l, ab=ab, target=target, pixel_weights=w,
                    mask=None, step=jnp.zeros((), jnp.int32), rng=steps.make_rng(0), task=TASK,
                    loss_state={"perceptual": state})


def test_matches_keras_vgg16_features(vgg):
  model, path = vgg
  term = losses.get_term("perceptual", weights=path)
  state = term.init(jax.random.key(0))
  images = _photos(1)
  out = np.random.default_rng(2).normal(0, 0.2, (2, 32, 32, 2)).astype(np.float32)  # ab / 110
  got = float(term(_inputs(jnp.asarray(out), images, state), state))
  # oracle: skimage's float64 Lab -> RGB, Keras' VGG16 on "caffe" input, numpy distances
  lab = skimage.color.rgb2lab(images)
  pred_rgb = np.stack([skimage.color.lab2rgb(np.concatenate([lab[i, ..., :1], out[i] * 110.0], -1))
                       for i in range(2)])
  caffe = lambda rgb: (rgb * 255.0)[..., ::-1] - np.asarray(CAFFE_MEAN_BGR)
  probe = keras.Model(model.inputs, [model.get_layer(n).output for n in LAYERS])
  fp = probe([caffe(pred_rgb).astype(np.float32)])
  ft = probe([caffe(images / 255.0).astype(np.float32)])
  want = sum(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2) for a, b in zip(fp, ft))
  assert want > 1.0  # a real difference, far above float32 rounding of the features
  # float32 features of magnitude ~10-100 over a 3x3x256 reduction: relative error ~1e-4
  assert got == pytest.approx(want, rel=2e-3)
  same = float(term(_inputs(jnp.asarray(lab[..., 1:] / 110.0, jnp.float32), images, state), state))
  assert same < 1e-3 * want  # the true colors: only float32 Lab round trips remain


def test_gradient_matches_a_finite_difference(vgg):
  term = losses.get_term("perceptual", weights=vgg[1], layers="block1_conv2,block2_conv2")
  state = term.init(jax.random.key(0))
  images = _photos(3)
  f = jax.jit(lambda z: term(_inputs(z, images, state), state))
  z = jnp.asarray(np.random.default_rng(4).normal(0, 0.2, (2, 32, 32, 2)), jnp.float32)
  d = jnp.asarray(np.random.default_rng(5).normal(0, 1, z.shape), jnp.float32)
  d = d / jnp.linalg.norm(d)
  eps = 1e-2
  numeric = (float(f(z + eps * d)) - float(f(z - eps * d))) / (2 * eps)
  analytic = float(jnp.sum(jax.grad(f)(z) * d))
  assert analytic == pytest.approx(numeric, rel=0.02, abs=1e-3 * abs(float(f(z))))


def test_training_lowers_it_and_keeps_vgg_frozen(vgg):
  obj = objective.Objective((("perceptual", 1.0, losses.get_term("perceptual", weights=vgg[1],
                                                                  layers="block1_conv2,block2_conv2")),))
  model = get_model("unet", head="regression", features=(4, 8))
  tx = optax.adam(3e-3)
  state = steps.init_state(steps.make_rng(0), model=model, tx=tx, image_shape=(1, 32, 32, 3))
  state = state.replace(loss_state=obj.init_state(jax.random.key(0)))
  frozen = jax.tree.map(np.asarray, state.loss_state)
  step = jax.jit(functools.partial(steps.train_step, model=model, tx=tx, task=TASK, loss_fn=obj))
  batch = {"image": _photos(6, b=4), "mask": np.ones(4, bool)}
  hist = []
  for _ in range(25):
    state, m = step(state, batch)
    hist.append(float(m["loss"]))
  assert hist[-1] < 0.7 * hist[0], hist[::5]
  jax.tree.map(np.testing.assert_array_equal, frozen, jax.tree.map(np.asarray, state.loss_state))


def test_config_errors_before_compilation(tmp_path):
  config = unet_reg.get_config("local")
  config.losses.l2 = 1.0
  config.losses.perceptual = 0.1
  with pytest.raises(ValueError, match="needs config.loss_options.perceptual.weights"):
    builders.check_config(config)
  config.loss_options.perceptual.weights = str(tmp_path / "none.h5")
  with pytest.raises(ValueError, match="none.h5'?: no such file"):
    builders.check_config(config)
  with pytest.raises(ValueError, match="not VGG16 block outputs.*block3_conv3"):
    perceptual.Perceptual(layers="block3_conv1")
