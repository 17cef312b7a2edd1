"""A person's hints for colorize (jaxcolor/inference/hint_file.py) and `colorize --hints`: reading, placing,
errors that name the problem, and a bad hint failing only its photo."""
import json

import ml_collections
import numpy as np
import pytest
from etils import epath
from PIL import Image
from skimage import color as skcolor

from jaxcolor import colorize, hints
from jaxcolor.inference import hint_file
from configs import default
from run_helpers import write_untrained_run


def test_colors_parse_as_hex_short_hex_and_lists():
  assert hint_file.parse_color("#2f6fd0") == (47, 111, 208)
  assert hint_file.parse_color("#26d") == (34, 102, 221)
  assert hint_file.parse_color([10, 20.4, 255]) == (10, 20, 255)
  for bad in ("blue", "#12345", [1, 2], [0, 0, 300], "#gg0000", True):
    with pytest.raises(hint_file.HintError, match="unreadable color"):
      hint_file.parse_color(bad)


@pytest.mark.parametrize("items,message", [
    ({"x": 1}, "expected a list"),
    ([{"x": 1, "y": 2}], "\"x\", \"y\" and \"color\""),
    ([{"x": 1, "y": 2, "color": "#000", "radius": 3}], "unknown fields \\['radius'\\]"),
    ([{"x": "1", "y": 2, "color": "#000"}], "x must be a number"),
    ([{"x": 1, "y": 2, "color": "#000", "size": 0}], "size must be > 0"),
    ([{"x": 1, "y": 2, "color": "#000"}, {"x": 1, "y": 2, "color": "teal"}], "hint 1: unreadable color 'teal'"),
])
def test_bad_hints_name_the_file_the_hint_and_the_problem(items, message):
  with pytest.raises(hint_file.HintError, match=message) as e:
    hint_file.parse_hints(items, "h.json")
  assert str(e.value).startswith("h.json")


def test_channels_place_the_hint_where_the_photo_is_resized_with_the_colors_ab():
  hint = hint_file.Hint(x=150, y=20, rgb=(47, 111, 208), size=20)  # a 400 x 100 (W x H) photo -> 64 x 64
  out = hint_file.channels([hint], (100, 400), 64)
  rows, cols = np.nonzero(out[..., 2])
  # y: 20.5 x 0.64 = 13.1 -> 20 px = 12.8 -> 13 rows centered there; x: 150.5 x 0.16 = 24.1, 3.2 -> 3 columns
  assert set(rows) == set(range(7, 20)) and set(cols) == set(range(23, 26))
  truth = skcolor.rgb2lab(np.asarray(hint.rgb, np.float64)[None, None] / 255)[0, 0, 1:]  # independent oracle
  np.testing.assert_allclose(out[rows[0], cols[0], :2] * 110, truth, atol=0.05)
  default_size = hint_file.channels([hint_file.Hint(399, 99, (255, 0, 0))], (100, 400), 64)
  assert default_size[..., 2].sum() == 9 and default_size[63, 63, 2] == 1  # 3x3 at the model's size, clipped in
  with pytest.raises(hint_file.HintError, match=r"hint 0 at \(x=400, y=5\) is outside the 400x100 photo"):
    hint_file.channels([hint_file.Hint(400, 5, (0, 0, 0))], (100, 400), 64)


def test_a_list_fits_one_photo_keys_fit_names_or_stems():
  photos = [epath.Path("/a/beach.jpg"), epath.Path("/a/dog.png")]
  h = [hint_file.Hint(1, 1, (0, 0, 0))]
  assert hint_file.for_photos(h, photos[:1], "h.json") == [h]
  with pytest.raises(hint_file.HintError, match="one list of hints, but 2 photos.*beach.jpg"):
    hint_file.for_photos(h, photos, "h.json")
  assert hint_file.for_photos({"beach.jpg": h, "dog": []}, photos, "h.json") == [h, []]
  with pytest.raises(hint_file.HintError, match=r"keys \['bech.jpg'\] name none of the photos"):
    hint_file.for_photos({"bech.jpg": h}, photos, "h.json")


@pytest.fixture(scope="module")
def guided_run(tmp_path_factory):
  c = default.get_config()
  c.model, c.model_kwargs = "siggraph17", ml_collections.ConfigDict(dict(width=1 / 16))
  c.image_size, c.hints.enabled = 32, True
  wd = tmp_path_factory.mktemp("guided_run")
  write_untrained_run(c, wd)
  return wd


def _photos(folder):
  rng = np.random.default_rng(0)
  folder.mkdir()
  for name in ("a", "b", "c"):
    Image.fromarray(rng.integers(0, 256, (48, 80, 3), np.uint8)).save(folder / f"{name}.png")
  return folder


def test_colorize_with_hints_bad_hints_fail_only_their_photo(guided_run, tmp_path, capsys):
  photos = _photos(tmp_path / "in")
  hints_json = tmp_path / "hints.json"
  hints_json.write_text(json.dumps({"a.png": [{"x": 10, "y": 10, "color": "#2f6fd0"}],
                                    "b": [{"x": 500, "y": 10, "color": "#2f6fd0"}]}))
  rc = colorize.main([str(photos), f"--workdir={guided_run}", f"--hints={hints_json}", f"--out={tmp_path / 'out'}"])
  err = capsys.readouterr().err
  assert rc == 1 and "hint 0 at (x=500, y=10) is outside the 80x48 photo" in err
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_colorize_refuses_a_list_for_a_folder_and_hints_for_an_automatic_model(guided_run, tiny_run_dir, tmp_path,
                                                                                capsys):
  photos = _photos(tmp_path / "in")
  one_list = tmp_path / "hints.json"
  one_list.write_text(json.dumps([{"x": 10, "y": 10, "color": "#2f6fd0"}]))
  out = tmp_path / "out"
  assert colorize.main([str(photos), f"--workdir={guided_run}", f"--hints={one_list}", f"--out={out}"]) == 2
  assert "one list of hints, but 3 photos" in capsys.readouterr().err and not out.exists()
  assert colorize.main([str(photos / "a.png"), f"--workdir={tiny_run_dir}", f"--hints={one_list}",
                        f"--out={out}"]) == 2
  assert "does not take color hints" in capsys.readouterr().err and not out.exists()
  (tmp_path / "broken.json").write_text("[{")
  assert colorize.main([str(photos / "a.png"), f"--workdir={guided_run}", f"--hints={tmp_path / 'broken.json'}",
                        f"--out={out}"]) == 2
  assert "broken.json: not valid JSON" in capsys.readouterr().err


def test_hints_reach_the_model_at_the_right_place(guided_run):
  """predict_ab hands the hint channels to the model: with non-zero weights the output changes, at the hint
  (the network alone: on this flat photo the propagation after it would carry the hint everywhere)."""
  import jax
  c = colorize.Colorizer(str(guided_run), propagate=False)
  c.variables = jax.tree.map(lambda x: x + 0.05 * jax.random.normal(jax.random.key(x.size), x.shape), c.variables)
  photo = np.full((64, 64, 3), 128, np.uint8)
  given = hint_file.channels([hint_file.Hint(8, 8, (0, 0, 255), size=6)], (64, 64), c.size)
  with_hint, without = c.predict_ab([photo, photo], 2, hints=[given, None])
  diff = np.abs(with_hint - without).sum(-1)
  assert diff[:8, :8].mean() > 3 * diff[-8:, -8:].mean() and hints.CHANNELS == given.shape[-1]


def test_colorize_propagates_the_hints_unless_told_not_to(guided_run, tmp_path):
  """By default the hints' residuals are spread after the network: the hinted pixel comes out in the hint's color
  and so does the flat region around it; --no_propagation gives the network's colors alone."""
  from skimage import color as skcolor
  photo = np.full((48, 80, 3), 128, np.uint8)
  photo[:, 40:] = 30  # a dark right half: an edge the hint's color must not cross
  Image.fromarray(photo).save(tmp_path / "p.png")
  (tmp_path / "hints.json").write_text(json.dumps([{"x": 10, "y": 20, "color": "#2f6fd0", "size": 4}]))
  outs = {}
  for flag in ([], ["--no_propagation"]):
    out = tmp_path / f"out{len(flag)}"
    assert colorize.main([str(tmp_path / "p.png"), f"--workdir={guided_run}", f"--hints={tmp_path / 'hints.json'}",
                          f"--out={out}"] + flag) == 0
    outs[bool(flag)] = skcolor.rgb2lab(np.asarray(Image.open(out / "p.png")) / 255.0)[..., 1:]
  hint_ab = skcolor.rgb2lab(np.array([[[47, 111, 208]]]) / 255.0)[0, 0, 1:]
  # The photo's own L (50 or so) cannot show the hint's exact chroma everywhere in sRGB: compare directions.
  cos = lambda ab: (ab @ hint_ab) / (np.linalg.norm(ab, axis=-1) * np.linalg.norm(hint_ab) + 1e-9)
  spread, alone = outs[False], outs[True]
  assert cos(spread[20, 10]) > 0.95 and cos(spread[5:40, 5:35]).min() > 0.9  # the hinted region is blue
  assert np.abs(spread[:, 45:] - alone[:, 45:]).max() < 2.0  # past the edge: the network's colors
  assert np.abs(spread[:, :35] - alone[:, :35]).mean() > 5.0  # the flag switches it off


def test_a_batch_without_hints_skips_the_propagation(guided_run):
  """Photos without hints (colorize without --hints, the page's automatic preview) run the network once: the
  propagation and its second network pass are skipped, and the colors are what they would have given."""
  c = colorize.Colorizer(str(guided_run))
  photo = np.random.default_rng(1).integers(0, 256, (40, 56, 3), np.uint8)
  full = c._predict
  c._predict = lambda *a: pytest.fail("a batch without hints went through the propagation")
  auto = c.predict_ab([photo], 1, hints=[None])[0]
  small = np.asarray(Image.fromarray(photo).resize((c.size, c.size), Image.BICUBIC))[None]
  zeros = np.zeros((1, c.size, c.size, hints.CHANNELS), np.float32)
  # The same network on the same input, once in a batch of 1 and once of 2 (with and without hints): float32
  # ulps of ab (|ab| <= 110), and a correction of exactly zero.
  np.testing.assert_allclose(auto, np.asarray(full(c.variables, small, zeros, np.float32(c.temperature)))[0],
                             atol=1e-3)
