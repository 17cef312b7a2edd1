"""python -m jaxcolor.evaluate_hints: PSNR / AuC against the number of hints, baselines and references beside."""
import json

import ml_collections
import numpy as np
import pytest
from PIL import Image

from configs import default
from jaxcolor import evaluate_hints
from run_helpers import write_untrained_run


@pytest.fixture(scope="module")
def guided_cls_run(tmp_path_factory):
  """A hint-taking classifier from random weights (its logits, unlike a fresh regression head, depend on the
  input, so hints change the colors)."""
  c = default.get_config()
  c.model, c.model_kwargs, c.head = "siggraph17", ml_collections.ConfigDict(dict(width=1 / 16)), "classification"
  c.loss, c.image_size, c.hints.enabled = "cross_entropy", 32, True
  wd = tmp_path_factory.mktemp("guided_cls")
  write_untrained_run(c, wd)
  return wd


def test_curve_table_json_and_plot(guided_cls_run, tiny_run_dir, shared_data, tmp_path, capsys):
  out = tmp_path / "curve"
  args = [f"--workdir={guided_cls_run}", "--datasets=kodak24", "--counts=0,2,10", f"--references={tiny_run_dir}",
          f"--data_dir={tmp_path / 'tfds'}", "--size=32", "--batch_size=8", "--max_batches=1", f"--out={out}"]
  assert evaluate_hints.main(args) == 0
  table = capsys.readouterr().out
  assert "kodak24 PSNR dB" in table and "| 10 hints |" in table and "grayscale (ab = 0)" in table
  results = json.loads((out / "hints_curve.json").read_text())["kodak24"]
  assert list(results)[:3] == ["0 hints", "2 hints", "10 hints"]
  assert f"{tiny_run_dir} (automatic)" in results and "constant tint (ab = 6, 16)" in results
  assert all(r["num_examples"] == 8 for r in results.values())
  assert results["0 hints"]["psnr"] != results["10 hints"]["psnr"]  # the hints reach the model
  # Beside the network alone, its colors with the hints' residuals propagated (N > 0 only: nothing to spread).
  assert [r for r in results if r.endswith("propagated")] == ["2 hints, propagated", "10 hints, propagated"]
  assert results["10 hints, propagated"]["psnr"] != results["10 hints"]["psnr"]
  assert Image.open(out / "hints_curve.png").size == (900, 300)
  assert evaluate_hints.main(args) == 1  # kept unless --overwrite
  assert evaluate_hints.main(args + ["--overwrite"]) == 0
  again = json.loads((out / "hints_curve.json").read_text())["kodak24"]
  np.testing.assert_equal(again, results)  # the hints come from a fixed key: the same numbers every time
  assert evaluate_hints.main(args + ["--overwrite", "--no_propagation"]) == 0
  alone = json.loads((out / "hints_curve.json").read_text())["kodak24"]
  assert not [r for r in alone if r.endswith("propagated")] and alone["10 hints"] == results["10 hints"]
  assert evaluate_hints.main(args + ["--overwrite", "--propagation=lightness_sigma=0,network_share=1"]) == 0
  changed = json.loads((out / "hints_curve.json").read_text())["kodak24"]
  assert changed["10 hints"] == results["10 hints"]  # the network's rows stay; the propagated ones change
  assert changed["10 hints, propagated"]["psnr"] != results["10 hints, propagated"]["psnr"]
  capsys.readouterr()
  assert evaluate_hints.main(args + ["--overwrite", "--propagation=lightness=0"]) == 2
  assert "lightness_sigma" in capsys.readouterr().err  # an unknown setting: the choices named


def test_an_automatic_model_is_refused(tiny_run_dir, tmp_path, capsys):
  assert evaluate_hints.main([f"--workdir={tiny_run_dir}", "--counts=0,5", f"--out={tmp_path}"]) == 2
  assert "does not take color hints" in capsys.readouterr().err
