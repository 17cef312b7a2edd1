"""The local web page (jaxcolor/app) in a real browser: headless Chromium driven by Selenium.

The page opens a photo, shows the shipped `vivid` and `guided` colorizations, its download has the CLI's
pixels, the temperature slider changes vivid's colorfulness, a hint placed with a click pulls the color near it;
a bad file shows its message. Without Chromium (`apt-get install chromium chromium-driver`; .ci/run installs
it) the browser tests skip; the HTTP tests (bad input, two clients at once) run anyway. The page's screenshot is
kept in $JAXCOLOR_TEST_ARTIFACTS (default test-artifacts/).
"""
import base64
import concurrent.futures
import io
import json
import os
import pathlib
import shutil
import struct
import threading
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from jaxcolor import colorize
from jaxcolor.app import server, studio
from jaxcolor.colorspace import color

ARTIFACTS = pathlib.Path(os.environ.get("JAXCOLOR_TEST_ARTIFACTS", "test-artifacts"))
BLUE = "#2f6fd0"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
  """The app on a free port, in this process, with the shipped vivid and guided models."""
  s = studio.Studio(["vivid", "guided"])
  httpd = server.make_server(s, "127.0.0.1", 0)
  threading.Thread(target=httpd.serve_forever, daemon=True).start()
  yield f"http://127.0.0.1:{httpd.server_address[1]}"
  httpd.shutdown()
  httpd.server_close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> pathlib.Path:
  """A real photo (scikit-image's coffee, embedded: no shared data needed), 400x300."""
  path = tmp_path_factory.mktemp("photo") / "coffee.png"
  Image.fromarray(skdata.coffee()).resize((400, 300), Image.LANCZOS).save(path)
  return path


def _get(url: str) -> tuple[int, bytes]:
  try:
    with urllib.request.urlopen(url, timeout=300) as r:
      return r.status, r.read()
  except urllib.error.HTTPError as e:
    return e.code, e.read()


def _post(url: str, body: bytes) -> tuple[int, bytes]:
  try:
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=300) as r:
      return r.status, r.read()
  except urllib.error.HTTPError as e:
    return e.code, e.read()


def _png_header_only(width: int, height: int) -> bytes:
  """A PNG that declares width x height and holds no pixels (a huge photo's header, cheaply)."""
  chunk = lambda kind, payload: (struct.pack(">I", len(payload)) + kind + payload
                                 + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
          + chunk(b"IEND", b""))


def test_bad_uploads_are_refused_with_the_reason_and_the_server_keeps_serving(app, photo):
  status, body = _post(f"{app}/api/photo?name=notes.txt", b"not a photo")
  assert status == 400 and "notes.txt: not an image" in json.loads(body)["error"]
  raw = photo.read_bytes()
  status, body = _post(f"{app}/api/photo?name=cut.png", raw[:len(raw) // 2])
  assert status == 400 and json.loads(body)["error"].startswith("cut.png: cannot decode")
  status, body = _post(f"{app}/api/photo?name=huge.png", _png_header_only(12_000, 9_000))
  assert status == 400 and "12000x9000 = 108.0 MP > --max_pixels 100.0 MP" in json.loads(body)["error"]
  status, body = _get(f"{app}/api/preview?photo=nope&model=vivid")
  assert status == 404 and "no photo 'nope'" in json.loads(body)["error"]
  status, body = _post(f"{app}/api/photo?name=coffee.png", raw)
  pid = json.loads(body)["id"]
  status, body = _get(f"{app}/api/preview?photo={pid}&model=guided&hints=" + urllib.request.quote('[{"x": 1}]'))
  assert status == 400 and json.loads(body)["error"].startswith("hints: hint 0: each hint is an object")
  one = urllib.request.quote(json.dumps([{"x": 1, "y": 1, "color": BLUE}]))
  status, body = _get(f"{app}/api/preview?photo={pid}&model=vivid&hints={one}")
  assert status == 400 and "vivid does not take color hints" in json.loads(body)["error"]
  status, body = _get(f"{app}/api/preview?photo={pid}&model=vivid&temperature=-1")
  assert status == 400 and "temperature must be in (0, 10]" in json.loads(body)["error"]
  assert _get(f"{app}/api/models")[0] == 200  # still serving


def test_a_16_bit_tiff_and_a_large_photo_open_with_previews_at_screen_size(app, tmp_path):
  deep = (np.linspace(0, 65535, 120 * 90).reshape(90, 120)).astype(np.uint16)
  buf = io.BytesIO()
  Image.fromarray(deep).save(buf, format="TIFF")
  status, body = _post(f"{app}/api/photo?name=scan.tif", buf.getvalue())
  assert status == 200 and json.loads(body)["width"] == 120
  status, png = _get(f"{app}/api/preview?photo={json.loads(body)['id']}&model=vivid")
  assert status == 200 and Image.open(io.BytesIO(png)).size == (120, 90)
  big = Image.fromarray(skdata.coffee()).resize((1600, 1200))
  buf = io.BytesIO()
  big.save(buf, format="JPEG")
  info = json.loads(_post(f"{app}/api/photo?name=big.jpg", buf.getvalue())[1])
  assert info["note"] == "1600x1200 px: previews at 512x384, downloads at full resolution"
  assert Image.open(io.BytesIO(_get(f"{app}/api/preview?photo={info['id']}&model=vivid")[1])).size == (512, 384)


def test_two_clients_at_once_are_queued_and_both_answered(app, photo):
  pid = json.loads(_post(f"{app}/api/photo?name=coffee.png", photo.read_bytes())[1])["id"]
  urls = [f"{app}/api/preview?photo={pid}&model=vivid&temperature=0.5",
          f"{app}/api/preview?photo={pid}&model=guided&hints=" + urllib.request.quote(
              json.dumps([{"x": 200, "y": 150, "color": BLUE}]))]
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    answers = list(pool.map(_get, urls))
  for status, body in answers:
    assert status == 200 and Image.open(io.BytesIO(body)).size == (400, 300)


# --- in a real browser -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
  chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
  if not (chromium and driver_path):
    pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service
  options = webdriver.ChromeOptions()
  options.binary_location = chromium
  for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
    options.add_argument(arg)
  driver = webdriver.Chrome(service=Service(driver_path), options=options)
  yield driver
  driver.quit()


def _wait(driver, condition, timeout=300):
  from selenium.webdriver.support.ui import WebDriverWait
  return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d))


def _state(driver, name):
  return driver.execute_script(f"const i = document.getElementById('out-{name}'); return i && i.dataset.state;")


def _shown(driver, name) -> np.ndarray:
  """The pixels the page shows for a panel, read back from the <img> through a canvas."""
  url = driver.execute_script(f"""
      const img = document.getElementById('out-{name}');
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      c.getContext('2d').drawImage(img, 0, 0);
      return c.toDataURL('image/png');""")
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _colorfulness(rgb: np.ndarray) -> float:
  ab = np.asarray(color.rgb_to_l_ab(rgb)[1], np.float64)
  return float(np.sqrt((ab ** 2).sum(-1)).mean())


def test_the_page_colorizes_downloads_the_cli_pixels_and_follows_slider_and_hints(app, photo, browser, tmp_path):
  from selenium.webdriver.common.action_chains import ActionChains
  from selenium.webdriver.common.by import By
  from selenium.webdriver.common.keys import Keys
  d = browser
  d.get(app)
  _wait(d, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
  d.find_element(By.ID, "file").send_keys(str(photo))
  _wait(d, lambda d: all(_state(d, n) == "done" for n in ("gray", "vivid", "guided")))
  assert "coffee.png: 400x300 px" in d.find_element(By.ID, "note").text
  # What the page shows is the server's preview; the download link gives the CLI's pixels.
  pid = d.execute_script("return state.photo.id")
  preview = np.asarray(Image.open(io.BytesIO(_get(f"{app}/api/preview?photo={pid}&model=vivid&temperature=0.38")[1])))
  np.testing.assert_array_equal(_shown(d, "vivid"), preview)
  href = d.find_element(By.ID, "download-vivid").get_attribute("href")
  downloaded = np.asarray(Image.open(io.BytesIO(_get(href)[1])))
  assert colorize.main([str(photo), "--model=vivid", f"--out={tmp_path}"]) == 0
  np.testing.assert_array_equal(downloaded, np.asarray(Image.open(tmp_path / "coffee.png")))

  # The temperature slider: to its top (T = 1, the mean), vivid's colors fade.
  before = _colorfulness(_shown(d, "vivid"))
  slider = d.find_element(By.ID, "temperature")
  slider.click()
  slider.send_keys(Keys.END)
  _wait(d, lambda d: "temperature=1" in d.execute_script("return document.getElementById('out-vivid').dataset.url")
        and _state(d, "vivid") == "done")
  after = _colorfulness(_shown(d, "vivid"))
  assert after < 0.8 * before, (before, after)

  # A blue hint clicked onto the guided panel: the colors around it turn toward blue.
  d.execute_script(f"document.getElementById('hint-color').value = '{BLUE}'")
  img = d.find_element(By.ID, "out-guided")
  plain = _shown(d, "guided")
  w, h = img.size["width"], img.size["height"]
  ActionChains(d).move_to_element_with_offset(img, int(0.3 * w) - w // 2, int(0.5 * h) - h // 2).click().perform()
  _wait(d, lambda d: "hints=" in d.execute_script("return document.getElementById('out-guided').dataset.url")
        and _state(d, "guided") == "done")
  hint = d.execute_script("return state.hints[0]")
  assert abs(hint["x"] - 0.3 * 400) <= 2 and abs(hint["y"] - 0.5 * 300) <= 2 and hint["color"] == BLUE
  hinted = _shown(d, "guided")
  y, x = hint["y"], hint["x"]
  near = (slice(y - 8, y + 9), slice(x - 8, x + 9))
  blue_ab = np.asarray(color.rgb_to_l_ab(np.asarray([[[0x2f, 0x6f, 0xd0]]], np.uint8))[1])[0, 0]
  # ab along the hint's direction, averaged over the 17 x 17 px around it (the page's own pixels)
  toward = lambda rgb: float((np.asarray(color.rgb_to_l_ab(rgb[near])[1]) @ (blue_ab / np.linalg.norm(blue_ab))).mean())
  assert toward(hinted) > toward(plain) + 10, (toward(plain), toward(hinted))
  assert len(d.find_elements(By.CSS_SELECTOR, "#frame-guided .hint")) == 1
  ARTIFACTS.mkdir(parents=True, exist_ok=True)
  d.save_screenshot(str(ARTIFACTS / "app.png"))
  # Dragging the hint moves it (100 screen px to the right) and recolors there.
  marker = d.find_element(By.CSS_SELECTOR, "#frame-guided .hint")
  ActionChains(d).drag_and_drop_by_offset(marker, 100, 0).perform()
  _wait(d, lambda d: d.execute_script("return state.hints[0].x") > hint["x"] + 50 and _state(d, "guided") == "done")
  moved = d.execute_script("return state.hints[0]")
  assert abs(moved["x"] - (hint["x"] + 100 * 400 / w)) <= 4 and abs(moved["y"] - hint["y"]) <= 2
  assert f'"x":{moved["x"]}' in urllib.request.unquote(
      d.execute_script("return document.getElementById('out-guided').dataset.url"))
  # A right-click removes the hint: back to the automatic colors.
  ActionChains(d).context_click(d.find_element(By.CSS_SELECTOR, "#frame-guided .hint")).perform()
  _wait(d, lambda d: "hints=" not in d.execute_script("return document.getElementById('out-guided').dataset.url")
        and _state(d, "guided") == "done")
  np.testing.assert_array_equal(_shown(d, "guided"), plain)


def test_a_bad_file_shows_its_message_on_the_page(app, browser, tmp_path):
  from selenium.webdriver.common.by import By
  bad = tmp_path / "notes.txt"
  bad.write_text("not a photo")
  browser.get(app)
  _wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
  browser.find_element(By.ID, "file").send_keys(str(bad))
  _wait(browser, lambda d: d.find_element(By.ID, "message").text)
  assert "notes.txt: not an image" in browser.find_element(By.ID, "message").text
