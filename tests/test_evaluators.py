"""Evaluations named in a config (`evaluators.EvalSpec`): defaults, the older tuple form, checks."""
import pytest

from configs import unet_cls
from jaxcolor import builders
from jaxcolor.evaluation import evaluators


def test_default_is_the_runs_own_split_under_the_old_name():
  specs = evaluators.eval_specs(unet_cls.get_config("local"))
  assert list(specs) == ["color_metrics"]
  s = specs["color_metrics"]
  assert (s.type, s.dataset, s.size, s.every, s.batches) == ("color_metrics", "", None, None, None)
  assert evaluators.eval_specs({"evals": ("color_metrics",)}) == specs  # a config.json from before


def test_an_evaluation_of_another_dataset_reads_its_own_split_and_size(monkeypatch, tmp_path):
  from jaxcolor.data import datasets
  (tmp_path / "eval" / "kodak24").mkdir(parents=True)  # checking the config needs the folder, not the photos
  monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
  c = unet_cls.get_config("local")
  c.evals.kodak24 = evaluators.eval_fields(dataset="kodak24", size=256, every=0, decoding="mode")
  builders.check_config(c)
  spec = evaluators.eval_specs(c)["kodak24"]
  data = spec.data_config(c)
  assert (data.dataset, data.eval_split, data.eval_image_size, data.mix_datasets) == ("kodak24", None, 256, ())
  assert spec.due(c, 20, last=False) is False and spec.due(c, 40, last=True) is True
  assert evaluators.eval_specs(c)["color_metrics"].due(c, 20, last=False)  # unet_cls:local evaluates every 20


@pytest.mark.parametrize("fields, message", [
    (dict(type="nope"), r"config.evals.x.type='nope'; choose one of: color_metrics"),
    (dict(dataset="imagenet"), r"unknown dataset 'imagenet'; choices"),
    (dict(every=-1), r"config.evals.x.every=-1 must be >= 0"),
    (dict(decoding="median"), r"config.evals.x.decoding='median'; choose one of: mode, mean, annealed_mean"),
    (dict(sizes=3), r"config.evals.x: unknown fields \['sizes'\]"),
])
def test_mistakes_fail_before_compilation(fields, message):
  c = unet_cls.get_config("local")
  c.evals.x = dict(fields)
  with pytest.raises(ValueError, match=message):
    builders.check_config(c)
