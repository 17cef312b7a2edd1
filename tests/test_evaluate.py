"""python -m jaxcolor.evaluate on a tiny run and Kodak photos: table, JSON, baseline, decoding sweep."""
import json

import pytest

from jaxcolor import evaluate


def test_evaluate_writes_table_with_baseline_and_decoding_sweep(tiny_run_dir, shared_data, tmp_path, capsys):
  data_dir = tmp_path / "tfds"
  out = tmp_path / "eval"
  args = [f"--workdir={tiny_run_dir}", "--dataset=kodak24",
          f"--data_dir={data_dir}", "--size=32", "--batch_size=8", "--max_batches=1",
          "--decodings=annealed_mean:0.38,mode,mean", f"--out={out}"]
  assert evaluate.main(args) == 0
  table = capsys.readouterr().out
  assert "grayscale (ab = 0)" in table and "model (mode)" in table and "T=0.38" in table
  rows = json.loads(next(out.glob("*.json")).read_text())
  assert set(rows) == {"model (annealed_mean, T=0.38)", "model (mode)", "model (mean)", "grayscale (ab = 0)",
                       "constant tint (ab = 6, 16)"}
  gray = rows["grayscale (ab = 0)"]
  assert gray["num_examples"] == 8 and gray["colorfulness"] < 1.0 and 80 < gray["auc"] < 95
  # Colder decodings are more saturated: mode >= annealed mean >= mean in colorfulness.
  cf = {k: v["colorfulness"] for k, v in rows.items()}
  assert cf["model (mode)"] >= cf["model (annealed_mean, T=0.38)"] >= cf["model (mean)"]
  assert evaluate.main(args) == 1  # results exist: kept unless --overwrite
  assert evaluate.main(args + ["--overwrite"]) == 0


def test_bad_decoding_is_a_clear_error():
  with pytest.raises(ValueError, match="choose one of: mode, mean, annealed_mean"):
    evaluate.parse_decodings("median")
  assert evaluate.parse_decodings("annealed_mean:0.2, mode") == [("annealed_mean", 0.2), ("mode", None)]


def test_decoding_defaults_are_defined_once():
  from jaxcolor import defaults
  from jaxcolor.colorspace import quantize
  c = defaults.get_config()
  assert c.temperature == quantize.DEFAULT_TEMPERATURE and c.decoding in quantize.DECODINGS
  assert evaluate.parse_decodings("annealed_mean") == [("annealed_mean", quantize.DEFAULT_TEMPERATURE)]
