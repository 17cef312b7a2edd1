"""The HTTP side of the app: one page, its static files, and a small JSON / PNG API over a `Studio`.

Python's own `http.server` (ThreadingHTTPServer), no web framework: the page is one HTML file with its script
and style served from the package (nothing from a CDN: it works offline), and the API is five routes.
    GET  /                               the page (static/index.html; static/app.js, static/app.css)
    GET  /api/models                     [{name, label, classification, takes_hints, temperature, size}]
    POST /api/photo?name=FILE            body: the file's bytes -> {id, width, height, note} or {error}
    GET  /api/gray?photo=ID              PNG: the preview's L
    GET  /api/preview?photo=ID&model=M[&temperature=T][&hints=JSON]    PNG, long side <= 512
    GET  /api/download?photo=ID&model=M[&temperature=T][&hints=JSON]   PNG at full resolution (the CLI's pixels)
hints is the JSON of `colorize --hints` for one photo (a list of {x, y, color[, size]} in full-resolution
pixels). Every failure is answered with a status and {"error": message}; no request takes the server down.
"""
from __future__ import annotations

import http.server
import importlib.resources
import json
import logging
import sys
import urllib.parse
from typing import Any

from jaxcolor.app.studio import Studio
from jaxcolor.inference import hint_file

MAX_UPLOAD_BYTES = 512 * 2**20
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}


class ClientError(Exception):
  """A request that cannot be answered as asked (HTTP 400 or 404)."""

  def __init__(self, message: str, status: int = 400):
    super().__init__(message)
    self.status = status


def static_file(name: str) -> bytes:
  return (importlib.resources.files("jaxcolor.app") / "static" / name).read_bytes()


def _params(query: str) -> dict[str, str]:
  return {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}


def _settings(p: dict[str, str]) -> dict[str, Any]:
  """temperature and hints of a preview / download request."""
  out: dict[str, Any] = {}
  if p.get("temperature"):
    try:
      out["temperature"] = float(p["temperature"])
    except ValueError:
      raise ClientError(f"temperature must be a number, got {p['temperature']!r}") from None
    if not 0 < out["temperature"] <= 10:
      raise ClientError(f"temperature must be in (0, 10], got {out['temperature']}")
  if p.get("hints"):
    try:
      out["hints"] = hint_file.parse_hints(json.loads(p["hints"]), "hints")
    except json.JSONDecodeError as e:
      raise ClientError(f"hints: not valid JSON ({e})") from None
  return out


def make_handler(studio: Studio) -> type[http.server.BaseHTTPRequestHandler]:
  class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "jaxcolor"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (http.server's signature)
      logging.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
      self.send_response(status)
      self.send_header("Content-Type", content_type)
      self.send_header("Content-Length", str(len(body)))
      self.send_header("Cache-Control", "no-store")
      for k, v in (extra or {}).items():
        self.send_header(k, v)
      self.end_headers()
      self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
      self._send(status, json.dumps(value).encode(), "application/json")

    def _answer(self, route) -> None:
      try:
        route()
      except ClientError as e:
        self._json(e.status, {"error": str(e)})
      except KeyError as e:
        self._json(404, {"error": e.args[0] if e.args else "not found"})
      except (ValueError, OSError) as e:  # a bad photo or hint: say what and why
        self._json(400, {"error": str(e) if isinstance(e, ValueError) else f"cannot read: {type(e).__name__}: {e}"})
      except Exception as e:  # pylint: disable=broad-except  # the server keeps serving whatever happened
        logging.exception("request %s failed", self.path)
        self._json(500, {"error": f"{type(e).__name__}: {e}"})

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
      url = urllib.parse.urlsplit(self.path)
      p = _params(url.query)

      def route():
        if url.path in ("/", "/index.html"):
          return self._send(200, static_file("index.html"), STATIC["index.html"])
        if url.path.startswith("/static/") and url.path[len("/static/"):] in STATIC:
          name = url.path[len("/static/"):]
          return self._send(200, static_file(name), STATIC[name])
        if url.path == "/api/models":
          return self._json(200, [m.describe() for m in studio.models.values()])
        if url.path == "/api/gray":
          return self._send(200, studio.gray(p.get("photo", "")), "image/png")
        if url.path in ("/api/preview", "/api/download"):
          if "model" not in p:
            raise ClientError("model is required")
          if url.path == "/api/preview":
            return self._send(200, studio.preview(p.get("photo", ""), p["model"], **_settings(p)), "image/png")
          photo = studio.photo(p.get("photo", ""))
          stem = photo.name.rsplit(".", 1)[0] or "photo"
          body = studio.download(p.get("photo", ""), p["model"], **_settings(p))
          return self._send(200, body, "image/png",
                            {"Content-Disposition": f'attachment; filename="{stem}_{p["model"]}.png"'})
        raise ClientError(f"no such page: {url.path}", 404)
      self._answer(route)

    def do_POST(self) -> None:  # noqa: N802
      url = urllib.parse.urlsplit(self.path)
      p = _params(url.query)

      def route():
        if url.path != "/api/photo":
          raise ClientError(f"no such endpoint: {url.path}", 404)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES:
          raise ClientError(f"file too large: {length / 2**20:.0f} MB > {MAX_UPLOAD_BYTES / 2**20:.0f} MB")
        data = self.rfile.read(length)
        name = p.get("name", "photo")
        try:
          photo_id, photo = studio.open(data, name)
        except (ValueError, OSError) as e:
          reason = str(e) if isinstance(e, ValueError) else f"cannot decode: {type(e).__name__}: {e}"
          raise ClientError(f"{name}: {reason}") from None
        h, w = photo.rgb.shape[:2]
        self._json(200, {"id": photo_id, "name": name, "width": w, "height": h, "note": photo.note})
      self._answer(route)

  return Handler


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 8765) -> http.server.ThreadingHTTPServer:
  """A threaded server (requests on their own threads; model calls queue on the Studio's lock)."""
  server = http.server.ThreadingHTTPServer((host, port), make_handler(studio))
  server.daemon_threads = True
  return server


def serve(studio: Studio, host: str, port: int) -> None:
  server = make_server(studio, host, port)
  print(f"jaxcolor app: http://{host}:{server.server_address[1]}/ (models: {', '.join(studio.models)}; "
        f"Ctrl-C stops it)", file=sys.stderr, flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()
