"""Dataset registry: names resolve without TensorFlow; bad names list the choices."""
import os
import subprocess
import sys

import pytest

from jaxcolor.data import datasets


def test_registered_and_prefixed_names(monkeypatch, tmp_path):
  s = datasets.get_spec("skimage_photos")
  assert s.kind == "skimage" and (s.train_split, s.eval_split) == ("train", "validation")
  (tmp_path / "tiny-imagenet-64").mkdir()  # resolving a name needs the folder, not the photos
  monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
  t = datasets.get_spec("tiny_imagenet_64")  # under $JAXCOLOR_DATA
  assert t.kind == "folder" and t.path == str(tmp_path / "tiny-imagenet-64")
  assert (t.train_split, t.eval_split) == ("train", "val")
  assert datasets.get_spec("imagenet_resized/64x64").tfds_name == "imagenet_resized/64x64"
  f = datasets.get_spec("tfds:tf_flowers")
  assert f.kind == "tfds" and f.tfds_name == "tf_flowers" and f.eval_split == "train[90%:]"
  o = datasets.get_spec("tfds:places365_small")
  assert o.tfds_name == "places365_small" and o.name == "tfds:places365_small"
  new = datasets.get_spec("tfds:some_new_ds/cfg")  # unregistered: splits chosen from the build's, as for folders
  assert new.tfds_name == "some_new_ds/cfg" and (new.train_split, new.eval_split) == (None, None)
  folder = datasets.get_spec("folder:~/my photos")
  assert folder.kind == "folder" and folder.path.endswith("my photos") and "~" not in folder.path


@pytest.mark.parametrize("bad", ["imagenet", "", "tfds:", "folder:", None])
def test_unknown_names_list_choices(bad):
  with pytest.raises(ValueError, match="choices: .*skimage_photos"):
    datasets.get_spec(bad)


@pytest.mark.parametrize("name", ["kodak24", "photos_256", "scenes_256"])
def test_data_root_sets_name_the_variable_and_layout(name, monkeypatch, tmp_path):
  monkeypatch.delenv(datasets.DATA_ENV, raising=False)
  with pytest.raises(ValueError, match=r"(?s)JAXCOLOR_DATA is not set.*expected layout:.*photos-256/.*eval/kodak24/"):
    datasets.get_spec(name)
  monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))  # set, but without the photo set's folder
  with pytest.raises(ValueError, match=f"{tmp_path}/.* is not a folder .*JAXCOLOR_DATA={tmp_path}"):
    datasets.get_spec(name)
  sub = {"kodak24": "eval/kodak24", "photos_256": "photos-256", "scenes_256": "scenes-256"}[name]
  (tmp_path / sub).mkdir(parents=True)
  monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path) + "/")
  assert datasets.get_spec(name).path == str(tmp_path / sub)
  assert name in datasets.available()
  if name == "scenes_256":  # the last 5% held out, like photos_256
    assert (datasets.get_spec(name).train_split, datasets.get_spec(name).eval_split) == ("train[:95%]", "train[95%:]")


def test_embedded_photos_ship_with_scikit_image():
  files = datasets.skimage_photo_files()
  assert len(files["train"]) >= 5 and len(files["validation"]) >= 1
  names = {f.name for fs in files.values() for f in fs}
  assert not names & {"camera.png", "moon.png"}  # gray photos are not in the color set
  assert all(f.is_file() for fs in files.values() for f in fs)


def test_light_modules_do_not_import_tensorflow():
  code = ("import sys, jaxcolor.data.datasets, jaxcolor.data.prefetch, jaxcolor.data.input_pipeline; "
          "bad = [m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules]; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True)
