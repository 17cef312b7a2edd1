"""jaxcolor.colorize on a tiny freshly trained classification run: sizes, L kept, bad files, overwrite, temperature."""
import pathlib

import numpy as np
import pytest
from PIL import Image

from jaxcolor import colorize
from jaxcolor.colorspace import color


@pytest.fixture(scope="module")
def workdir(tiny_run_dir) -> pathlib.Path:
  return tiny_run_dir


@pytest.fixture(scope="module")
def colorizer(workdir):
  return colorize.Colorizer(str(workdir))


def _l(rgb):
  return np.asarray(color.rgb_to_l_ab(np.asarray(rgb))[0])


def test_kodak_outputs_keep_size_and_lightness(colorizer, shared_data, tmp_path):
  photos = sorted((shared_data / "eval" / "kodak24").glob("*.png"))[:3]
  assert len(photos) == 3
  results = colorize.colorize_files(colorizer, [str(p) for p in photos], str(tmp_path), batch_size=2, sheet=True)
  assert [r.status for r in results] == ["done"] * 3
  for p in photos:
    src = np.asarray(Image.open(p).convert("RGB"))
    out = np.asarray(Image.open(tmp_path / f"{p.stem}.png"))
    assert out.shape == src.shape
    assert np.abs(_l(out) - _l(src)).max() < 1.0
    assert Image.open(tmp_path / f"{p.stem}_sheet.png").size == (2 * src.shape[1], src.shape[0])


def _messy_folder(root: pathlib.Path) -> pathlib.Path:
  rng = np.random.default_rng(0)
  d = root / "in"
  (d / "sub").mkdir(parents=True)
  rgb = rng.integers(0, 256, (40, 56, 3), np.uint8)
  rgba = np.concatenate([rgb, rng.integers(0, 256, (40, 56, 1), np.uint8)], -1)
  Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
  Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE).save(d / "palette.png")
  Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
  Image.fromarray(rng.integers(0, 65536, (30, 20), np.uint16)).save(d / "sub" / "deep16.png")
  Image.fromarray(rgb[..., 0]).save(d / "sub" / "gray.jpg")
  Image.fromarray(rgb[:8, :8]).save(d / "tiny.png")
  Image.fromarray(rgb).save(d / "truncated.png")
  raw = (d / "truncated.png").read_bytes()
  (d / "truncated.png").write_bytes(raw[:len(raw) // 2])
  (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage" * 10)
  (d / "notes.txt").write_text("not a photo")
  return d


GOOD = {"rgba": (40, 56), "palette": (40, 56), "cmyk": (40, 56), "deep16": (30, 20), "gray": (40, 56),
        "tiny": (8, 8)}
BAD = {"truncated", "corrupt", "notes"}


def test_messy_folder_colorizes_good_reports_bad_and_exits_1(workdir, tmp_path, capsys):
  d, out = _messy_folder(tmp_path), tmp_path / "out"
  assert colorize.main([f"--workdir={workdir}", str(d), f"--out={out}", "--batch_size=4"]) == 1
  err = capsys.readouterr().err
  for stem, (h, w) in GOOD.items():
    img = Image.open(out / f"{stem}.png")
    assert img.size == (w, h), stem
  rgba_in = np.asarray(Image.open(d / "rgba.png"))
  rgba_out = np.asarray(Image.open(out / "rgba.png"))
  assert rgba_out.shape == rgba_in.shape and np.array_equal(rgba_out[..., 3], rgba_in[..., 3])
  for stem in BAD:
    assert not list(out.glob(f"{stem}*"))
    assert f"failed: {next(d.glob(stem + '.*'))}: " in err
  assert "not an image" in err and "truncated" in err


def test_existing_outputs_are_kept_unless_overwrite(colorizer, tmp_path):
  src = tmp_path / "a.png"
  Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 24, 3), np.uint8)).save(src)
  out = tmp_path / "out"
  out.mkdir()
  (out / "a.png").write_bytes(b"mine")
  assert [r.status for r in colorize.colorize_files(colorizer, [str(src)], str(out))] == ["kept"]
  assert (out / "a.png").read_bytes() == b"mine"
  assert [r.status for r in colorize.colorize_files(colorizer, [str(src)], str(out), overwrite=True)] == ["done"]
  assert Image.open(out / "a.png").size == (24, 24)


def test_a_failed_write_is_reported_and_the_rest_written_in_input_order(colorizer, tmp_path, monkeypatch):
  """Outputs are written on threads; a write error (here: disk full on b) fails that photo only."""
  rng = np.random.default_rng(2)
  names = ["a", "b", "c", "d", "e"]
  for name in names:
    Image.fromarray(rng.integers(0, 256, (20, 28, 3), np.uint8)).save(tmp_path / f"{name}.png")
  real_save = colorize._save

  def save(path, *args):
    if path.name == "b.png":
      raise OSError(28, "No space left on device")
    real_save(path, *args)

  monkeypatch.setattr(colorize, "_save", save)
  out = tmp_path / "out"
  results = colorize.colorize_files(colorizer, [str(tmp_path / f"{n}.png") for n in names], str(out),
                                    batch_size=2, writers=2)
  assert [pathlib.Path(r.path).stem for r in results] == names
  assert [r.status for r in results] == ["done", "failed", "done", "done", "done"]
  assert "cannot write" in results[1].reason and "No space left" in results[1].reason
  assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png", "e.png"]


def test_png_compress_level_changes_the_file_not_the_pixels(workdir, tmp_path, capsys):
  src = tmp_path / "ramp.png"
  ramp = np.linspace(0, 255, 48 * 64 * 3).reshape(48, 64, 3).astype(np.uint8)
  Image.fromarray(ramp).save(src)
  outs = {}
  for level in (0, 9):
    out = tmp_path / f"out{level}"
    assert colorize.main([f"--workdir={workdir}", str(src), f"--out={out}", f"--png_compress_level={level}"]) == 0
    outs[level] = out / "ramp.png"
  assert outs[0].stat().st_size > 2 * outs[9].stat().st_size
  np.testing.assert_array_equal(np.asarray(Image.open(outs[0])), np.asarray(Image.open(outs[9])))
  with pytest.raises(SystemExit):
    colorize.main([f"--workdir={workdir}", str(src), f"--out={tmp_path / 'x'}", "--png_compress_level=10"])
  assert "png_compress_level" in capsys.readouterr().err


def test_too_many_pixels_is_refused(colorizer, tmp_path):
  src = tmp_path / "big.png"
  Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(src)
  (r,) = colorize.colorize_files(colorizer, [str(src)], str(tmp_path / "out"), max_pixels=1000)
  assert r.status == "failed" and "too large" in r.reason


def test_temperature_changes_classification_output(workdir, shared_data):
  rgb = np.asarray(Image.open(sorted((shared_data / "eval" / "kodak24").glob("*.png"))[0]).convert("RGB"))
  hot = colorize.Colorizer(str(workdir), temperature=1.0).predict_ab([rgb], 1)[0]
  cold = colorize.Colorizer(str(workdir), temperature=0.05).predict_ab([rgb], 1)[0]
  assert np.abs(hot - cold).mean() > 1e-3


def test_exif_orientation_is_applied(colorizer, tmp_path):
  rgb = np.random.default_rng(1).integers(0, 256, (24, 40, 3), np.uint8)  # stored 40 wide, 24 high
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
  src = tmp_path / "in" / "rotated.jpg"
  src.parent.mkdir()
  Image.fromarray(rgb).save(src, exif=exif, quality=95)
  results = colorize.colorize_files(colorizer, [str(src)], str(tmp_path / "out"), batch_size=1)
  assert [r.status for r in results] == ["done"]
  out = np.asarray(Image.open(tmp_path / "out" / "rotated.png"))
  assert out.shape == (40, 24, 3)  # displayed upright: 24 wide, 40 high
  upright = np.asarray(Image.open(src).transpose(Image.Transpose.ROTATE_270).convert("RGB"))
  assert np.abs(_l(out) - _l(upright)).max() < 1.0


def test_flip_follows_the_config_unless_told(tmp_path):
  """config.inference_flip (set by a shipped model) turns test-time mirroring on; flip= (--flip / --no_flip)
  overrides it. Mirrored, a photo's colors are the mirror of its colors (equivariance the network lacks alone)."""
  from configs import unet_cls
  from run_helpers import write_untrained_run
  c = unet_cls.get_config("local")
  c.model_kwargs.features, c.image_size, c.inference_flip = (8, 16), 16, True
  write_untrained_run(c, tmp_path / "run")
  assert colorize.Colorizer(str(tmp_path / "run")).flip
  assert not colorize.Colorizer(str(tmp_path / "run"), flip=False).flip
  rgb = np.random.default_rng(2).integers(0, 256, (16, 16, 3), np.uint8)  # at the model's size: no resize
  mirrored = np.ascontiguousarray(rgb[:, ::-1])
  for flip, equivariant in ((None, True), (False, False)):
    ab, ab_m = colorize.Colorizer(str(tmp_path / "run"), flip=flip).predict_ab([rgb, mirrored], 2)
    gap = np.abs(ab_m - ab[:, ::-1]).max()
    # Annealed means of 313 bins (|ab| <= 110) in float32: ~2e-3 at worst; a random network's own asymmetry: > 0.1.
    assert (gap < 2e-3) if equivariant else (gap > 0.1), (flip, gap)
