"""Runs on gs:// against a real GCS API on localhost (tests/gcs_emulator.py: fake-gcs-server, TensorStore
pointed at it, tf.io.gfile and etils.epath through a local TLS proxy).

Every path of a run lives in a bucket here: TFDS data_dir (a `folder:` dataset built into it), workdir
(Orbax checkpoints, config.json, bins, prior, TensorBoard events, samples), evaluate and colorize outputs.
The suite runs in a network namespace with only loopback where the platform allows (conftest), so nothing
can reach a real endpoint.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from etils import epath
from PIL import Image

import gcs_emulator
from jaxcolor import checkpoint, colorize, evaluate, run_dir, storage, train
from jaxcolor.data import datasets, folder_dataset, input_pipeline
from run_helpers import write_untrained_run
from test_storage import check_write_atomic
from train_support import (REPO, assert_trees_close, assert_trees_equal, cache_env, compilation_cache,  # noqa: F401
                           no_eval, sigterm_after, tiny_config, two_processes_and_one)


@pytest.fixture(scope="module")
def gcs(tmp_path_factory):
  """The emulator, with every client's settings in os.environ for this module only."""
  emu = gcs_emulator.GCSEmulator(tmp_path_factory.mktemp("gcs"))
  old = {k: os.environ.get(k) for k in emu.env}
  os.environ.update(emu.env)
  yield emu
  for k, v in old.items():
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
  emu.close()


@pytest.fixture(scope="module")
def bucket(gcs) -> str:
  return gcs.bucket()


@pytest.fixture(scope="module")
def gs_data_dir(bucket) -> str:
  """The skimage photos built into a TFDS data_dir in the bucket, once for the module."""
  d = f"{bucket}/tfds"
  input_pipeline.get_builder(input_pipeline.parse_config(tiny_config(d)))
  return d


def test_storage_writes_whole_objects_or_nothing(gcs, bucket):
  """write_atomic in the bucket as on local disk (test_storage.check_write_atomic); errors name the full URL."""
  check_write_atomic(f"{bucket}/atomic")
  with pytest.raises(FileNotFoundError, match=f"{bucket}/atomic/nothing.json"):
    storage.read_bytes(f"{bucket}/atomic/nothing.json")
  with pytest.raises(FileNotFoundError, match=f"{bucket}/no_run/config.json"):
    run_dir.read_artifacts(f"{bucket}/no_run")


def test_run_folder_in_the_bucket_reads_back_as_on_disk(gcs, bucket, tiny_run_dir):
  """A run folder written to gs:// (config.json, bins, prior, a checkpoint) reads back as the same run on local
  disk does, and names a valid config.init_from."""
  config = ml_collections.ConfigDict(run_dir.read_config(tiny_run_dir))
  wd = f"{bucket}/untrained"
  write_untrained_run(config, wd)
  local, remote = run_dir.read_artifacts(tiny_run_dir), run_dir.read_artifacts(wd)
  assert remote.config == local.config and run_dir.config_differences(wd, config) == []
  np.testing.assert_array_equal(remote.bins.centers, local.bins.centers)
  np.testing.assert_array_equal(remote.prior, local.prior)
  assert_trees_equal(run_dir.restore_variables(wd), run_dir.restore_variables(tiny_run_dir))
  assert str(run_dir.init_source(wd)) == wd


def test_prior_and_keras_weights_from_the_bucket(gcs, bucket):
  """config.prior_path and pretrained .h5 files may be gs:// URLs: written there whole, read back the same."""
  from jaxcolor.colorspace import prior, quantize
  from jaxcolor.models import keras_weights
  from jaxcolor.models.vgg import VGG16Encoder
  bins = quantize.make_bins()
  p = np.random.default_rng(0).dirichlet(np.ones(bins.num_bins)).astype(np.float32)
  prior.save_prior(f"{bucket}/prior.npz", p, bins)
  loaded, loaded_bins = prior.load_prior(f"{bucket}/prior.npz")
  np.testing.assert_array_equal(loaded, p)
  np.testing.assert_array_equal(loaded_bins.centers, bins.centers)

  net = VGG16Encoder(depths=(1,))
  variables = net.init(jax.random.key(0), np.zeros((1, 8, 8, 3), np.float32))
  keras_weights.save_keras_h5(f"{bucket}/vgg16_block1.h5", net, variables)
  back = keras_weights.load_keras_weights(f"{bucket}/vgg16_block1.h5", net, variables)
  jax.tree.map(np.testing.assert_array_equal, back["params"], jax.device_get(variables["params"]))
  with pytest.raises(FileNotFoundError, match=f"{bucket}/missing.h5"):
    keras_weights.read_keras_h5(f"{bucket}/missing.h5")


def test_run_in_a_bucket_stops_and_resumes_to_the_uninterrupted_params(gcs, bucket, gs_data_dir, tmp_path,
                                                                        monkeypatch, no_eval):
  """Train with workdir and data_dir on gs://, SIGTERM after step 4 (saves step 4, exits), resume from the bucket:
  the parameters equal those of an uninterrupted run; every run artifact is an object in the bucket."""
  cfg = tiny_config(gs_data_dir, optimizer="adam", learning_rate=1e-3, head="classification", loss="cross_entropy")
  ref = jax.device_get(train.train_and_evaluate(cfg, tmp_path / "ref"))  # local workdir, same data

  wd = f"{bucket}/run"
  with monkeypatch.context() as m:
    sigterm_after(m, 4)
    stopped = train.train_and_evaluate(cfg, wd)
  assert int(jax.device_get(stopped.step)) == 4
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [3, 4]
  resumed = jax.device_get(train.train_and_evaluate(cfg, wd))
  assert int(resumed.step) == 6
  assert_trees_equal(resumed, ref)
  names = gcs.list_objects(bucket, "run/")
  for f in (run_dir.CONFIG_FILE, run_dir.BINS_FILE, run_dir.PRIOR_FILE):
    assert f"run/{f}" in names
  assert any(n.startswith("run/checkpoints/6/") for n in names)
  assert any(n.startswith("run/tensorboard/events.out.tfevents") for n in names)
  assert json.loads(storage.read_bytes(f"{wd}/config.json"))["data_dir"] == gs_data_dir


def test_readme_pod_commands_on_the_bucket(gcs, bucket, tmp_path, compilation_cache, capsys):
  """The README's TPU steps with a small config: a local photo folder built into the bucket (bad file reported),
  then, with the photos gone, `python -m jaxcolor.main` trains on it by name with the workdir in the bucket;
  `evaluate` and `colorize` read the run from the bucket and write there (bad and unmatched inputs named by
  URL, existing outputs kept)."""
  root = tmp_path / "photos"
  for split, files in datasets.skimage_photo_files().items():  # 7 + 2 photos
    folder = root / ("train" if split == "train" else "val")
    folder.mkdir(parents=True)
    for f in files:
      Image.open(f).convert("RGB").resize((40, 32)).save(folder / f"{f.stem}.png")
  counts = {split: len(list((root / split).iterdir())) for split in ("train", "val")}
  photos = root / "train"
  (photos / "broken.jpg").write_bytes(b"not a photo")
  data_dir = f"{bucket}/tfds"
  folder_dataset.main([str(photos.parent), "--data_dir", data_dir])
  out = capsys.readouterr().out
  assert f"{photos / 'broken.jpg'}: not an image" in out
  report = folder_dataset.build_folder_dataset(photos.parent, data_dir)[1]  # found in the bucket, not rebuilt
  assert report.dataset_dir.startswith(f"{data_dir}/folder_photos/") and report.num_examples == counts
  assert any(n.endswith(".tfrecord-00000-of-00001") for n in gcs.list_objects(bucket, "tfds/folder_photos/"))
  dataset = re.search(r"--config.dataset=(\S+)", out).group(1)
  shutil.rmtree(photos.parent)  # a pod worker has only the bucket

  wd = f"{bucket}/unet_cls"
  env = dict(os.environ, PYTHONPATH=str(REPO), **cache_env(compilation_cache))
  proc = subprocess.run(
      [sys.executable, "-m", "jaxcolor.main", "--config=configs/unet_cls.py:local", f"--workdir={wd}",
       f"--config.dataset={dataset}", f"--config.data_dir={data_dir}", "--config.total_steps=2",
       "--config.image_size=16", "--config.batch_size=8", "--config.eval_every=0", "--config.prior_batches=1",
       "--config.model_kwargs.features=(8, 16)"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
  assert f"run folder: {wd}" in proc.stdout
  assert checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2]

  assert evaluate.main([f"--workdir={wd}", f"--dataset={dataset}", f"--data_dir={data_dir}", "--size=16",
                        "--batch_size=2"]) == 0
  stem = dataset.replace(":", "_").replace("/", "_")
  rows = json.loads(storage.read_bytes(f"{wd}/eval/{stem}.json"))
  assert set(rows) == {"model", "grayscale (ab = 0)", "constant tint (ab = 6, 16)"} and np.isfinite(rows["model"]["psnr"])
  assert evaluate.main([f"--workdir={wd}", f"--dataset={dataset}", f"--data_dir={data_dir}", "--size=16"]) == 1
  assert "exists; pass --overwrite" in capsys.readouterr().err  # never silently overwritten

  old = epath.Path(bucket) / "old_photos"
  for i, f in enumerate(datasets.skimage_photo_files()["train"][:3]):
    storage.write_atomic(old / "sub" / "p2.png" if i == 2 else old / f"p{i}.png",
                         lambda out, f=f: Image.open(f).convert("RGB").resize((48, 40)).save(out, format="PNG"))
  storage.write_atomic(old / "bad.jpg", b"not a photo")
  out_dir = f"{bucket}/colorized"
  assert colorize.main([f"{old}/", f"{bucket}/missing/*.png", f"--workdir={wd}", f"--out={out_dir}"]) == 1
  err = capsys.readouterr().err
  assert "3 colorized, 0 kept, 2 failed" in err
  assert f"failed: {old}/bad.jpg: not an image" in err and f"failed: {bucket}/missing/*.png: no such" in err
  assert gcs.list_objects(bucket, "colorized/") == ["colorized/p0.png", "colorized/p1.png", "colorized/p2.png"]
  with storage.open_bytes(f"{out_dir}/p2.png") as f:
    assert Image.open(f).size == (48, 40)
  results = colorize.colorize_files(colorize.Colorizer(wd), [f"{old}/p*.png"], out_dir, log=open(os.devnull, "w"))
  assert [r.status for r in results] == ["kept", "kept"]


@pytest.mark.slow  # ~30 s: two runs through the proxy
def test_truncated_newest_checkpoint_in_the_bucket_falls_back(gcs, bucket, gs_data_dir, tmp_path, no_eval, caplog):
  """The newest step's array data in the bucket truncated to nothing: the run resumes from the previous step,
  moves the bad step aside (in the bucket) and trains it again to the same parameters."""
  cfg = tiny_config(gs_data_dir, total_steps=4, checkpoint_every=2)
  wd = f"{bucket}/corrupt"
  ref = jax.device_get(train.train_and_evaluate(cfg, wd))
  state_files = storage.expand_glob(f"{wd}/checkpoints/4/state/**/*")
  assert state_files
  for p in state_files:
    p.write_bytes(b"")
  with caplog.at_level("WARNING"):
    out = jax.device_get(train.train_and_evaluate(cfg, wd))
  assert "checkpoint step 4" in caplog.text and "failed to restore" in caplog.text
  assert any(n.startswith(f"corrupt/{checkpoint.CORRUPT_DIR}/4-") for n in gcs.list_objects(bucket, "corrupt/"))
  assert int(out.step) == 4 and checkpoint.Checkpointer(wd, read_only=True).all_steps() == [2, 4]
  assert_trees_equal(out, ref)


@pytest.mark.slow
def test_two_processes_on_the_bucket_match_one_process(gcs, bucket, gs_data_dir, tmp_path, compilation_cache):
  """2 processes x 2 devices with workdir and data_dir in the bucket (stop at step 2, evaluate, resume) equal
  1 process x 4 devices fed the same batches, as on local disk (tests/test_multihost.py); only process 0
  wrote the run's files."""
  multi, ref = two_processes_and_one(tmp_path, f"{bucket}/two", gs_data_dir, "jit", compilation_cache)
  assert sorted(multi) == sorted(ref)
  for part in ("[0]", "[1]"):  # params, batch_stats
    assert_trees_close({k: multi[k] for k in ref if k.startswith(part)}, {k: ref[k] for k in ref if k.startswith(part)})
  assert checkpoint.Checkpointer(f"{bucket}/two/multi", read_only=True).all_steps() == [2, 3]
  names = gcs.list_objects(bucket, "two/multi/")
  assert f"two/multi/{run_dir.CONFIG_FILE}" in names and any("tensorboard/events" in n for n in names)
