"""Fixtures for the fault tests: model servers in their own temp folder, a misbehaving HTTP
peer (webhook and input source), clients that walk away, and ways to wait for what a model
records (see ``tests/faults/models/model.py``), without sleeping a fixed time."""

from __future__ import annotations

import contextlib
import json
import pathlib
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, free_port, leftover_files, start_server

FAULT_MODELS = pathlib.Path(__file__).resolve().parent / "models"
WAIT = 60.0  # generous: the machine may be loaded; nothing asserts how fast things happen


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Marks:
    """The folder the fault models write their ``<tag>-<event>`` files into."""

    folder: pathlib.Path

    def __str__(self) -> str:
        return str(self.folder)

    def has(self, tag: str, event: str) -> bool:
        return (self.folder / f"{tag}-{event}").exists()

    def wait(self, tag: str, event: str, timeout: float = WAIT) -> None:
        wait_until(lambda: self.has(tag, event), f"{tag}-{event}", timeout)

    def when(self, tag: str, event: str) -> float:
        return (self.folder / f"{tag}-{event}").stat().st_mtime_ns / 1e9

    def events(self, tag: str) -> set[str]:
        prefix = f"{tag}-"
        return {p.name[len(prefix) :] for p in self.folder.iterdir() if p.name.startswith(prefix)}


@pytest.fixture
def marks(tmp_path: pathlib.Path) -> Marks:
    folder = tmp_path / "marks"
    folder.mkdir()
    return Marks(folder)


@dataclass
class FaultServer:
    """A model server whose temp folder (``$TMPDIR``) is private to the test."""

    server: RunningServer
    tmp: pathlib.Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def predict_url(self) -> str:
        return self.server.predict_url

    def process_folders(self) -> list[pathlib.Path]:
        return sorted(p for p in self.tmp.glob("kservehelper-*") if p.is_dir())

    def leftover_files(self) -> list[pathlib.Path]:
        """Files the server left under its temp folder, besides its lock file."""
        return leftover_files(self.tmp)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the server's Prometheus metrics (0 if absent)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> None:
        self.server.stop()


ServeFault = Callable[..., FaultServer]


@pytest.fixture
def serve_fault(tmp_path: pathlib.Path) -> Iterator[ServeFault]:
    """Start ``kservehelper serve tests/faults/models --class CLASS`` with its own $TMPDIR."""
    servers: list[FaultServer] = []

    def factory(
        class_name: str,
        *extra: str,
        env: dict[str, str] | None = None,
        tmp: pathlib.Path | None = None,
        name: str = "fault",
    ) -> FaultServer:
        folder = tmp or tmp_path / f"tmp-{len(servers)}"
        folder.mkdir(exist_ok=True)
        port = free_port()
        args = [sys.executable, "-m", "kservehelper", "serve", str(FAULT_MODELS)]
        args += ["--class", class_name, "--name", name, "--port", str(port)]
        args += ["--host", "127.0.0.1", *extra]
        log = tmp_path / f"server-{len(servers)}.log"
        running = start_server(args, name, log, port, env={"TMPDIR": str(folder), **(env or {})})
        server = FaultServer(running, folder)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


class WalkingClient:
    """A raw HTTP/1.1 client that sends a request and can leave at any moment."""

    def __init__(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None):
        parsed = httpx.URL(url)
        payload = json.dumps(body).encode()
        lines = [
            f"POST {parsed.raw_path.decode()} HTTP/1.1",
            f"Host: {parsed.host}:{parsed.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        self.sock = socket.create_connection((parsed.host, parsed.port or 80), timeout=WAIT)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        self.received = b""

    def read_until(self, marker: bytes) -> bytes:
        """Read until ``marker`` has arrived (e.g. the first stream record)."""
        while marker not in self.received:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before {marker!r}: {self.received!r}")
            self.received += chunk
        return self.received

    def leave(self) -> None:
        """Close the connection without reading the answer."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@dataclass
class FaultPeer:
    """A misbehaving webhook / file server; ``events`` records what clients did to it."""

    url: str
    events: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def saw(self, event: str) -> bool:
        return event in self.events


class _PeerHandler(BaseHTTPRequestHandler):
    """By path: ``/status500/...`` answers 500; ``/hang/...`` holds the request until the
    client leaves (or the test releases it); ``/close/...`` drops the connection without an
    answer; ``/ok/...`` answers like a webhook; GET ``/trickle/NAME`` sends a large file very
    slowly. Every client that leaves mid-request is recorded as ``left:<path>``."""

    peer: FaultPeer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                return
            length -= len(chunk)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _client_left(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0.05)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        self.peer.events.append(f"post:{path}")
        self._read_body()
        if path.startswith("/status500"):
            self._answer(500, {"error": "the webhook broke"})
        elif path.startswith("/hang"):
            while not self.peer.release.is_set():
                if self._client_left():
                    self.peer.events.append(f"left:{path}")
                    return
            self._answer(200, {"url": "http://files.invalid/late"})
        elif path.startswith("/close"):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._answer(200, {"url": "http://files.invalid/ok"})

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.peer.events.append(f"get:{path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(64 * 1024 * 1024))
        self.end_headers()
        try:
            while True:  # 64 KiB every 50 ms: the download outlives any test
                self.wfile.write(b"z" * 65536)
                self.wfile.flush()
                self.peer.events.append(f"sent:{path}")
                time.sleep(0.05)
        except OSError:
            self.peer.events.append(f"left:{path}")


@pytest.fixture
def fault_peer() -> Iterator[FaultPeer]:
    peer = FaultPeer(url="")
    handler = type("Handler", (_PeerHandler,), {"peer": peer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    peer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        peer.release.set()
        server.shutdown()
        server.server_close()


def post(url: str, body: dict[str, Any], timeout: float = WAIT) -> httpx.Response:
    return httpx.post(url, json=body, timeout=timeout)
