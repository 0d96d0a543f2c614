"""Shared fixtures: real KServe model servers on free 127.0.0.1 ports, started and stopped here."""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

pytest_plugins = ["tests.fixtures_storage"]  # SeaweedFS, fake-gcs-server, upload server


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Every test reads the KSERVEHELPER_* environment afresh (tests change it)."""
    from kservehelper.settings import reset_settings

    reset_settings()
    yield
    reset_settings()


REPO = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
TEST_MODELS = pathlib.Path(__file__).resolve().parent / "models"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A model server subprocess and how to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    name: str
    log_path: pathlib.Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def predict_url(self) -> str:
        return f"{self.url}/v1/models/{self.name}:predict"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def leftover_files(tmp: pathlib.Path) -> list[pathlib.Path]:
    """Files a server left under its temp folder ``tmp``, besides its lock file. ``os.walk``
    skips folders that vanish while it looks (the server may still be removing one)."""
    return [
        pathlib.Path(root, name)
        for root, _, names in os.walk(tmp)
        for name in names
        if name != "owner.lock"
    ]


def start_server(
    args: list[str],
    name: str,
    log_path: pathlib.Path,
    port: int,
    env: dict[str, str] | None = None,
    cwd: pathlib.Path | None = None,
    timeout: float = 90,
) -> RunningServer:
    """Start ``args`` (a model server command) and wait until ``name`` reports ready."""
    full_env = {**os.environ, **(env or {})}
    log = log_path.open("wb")
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or REPO
    )
    server = RunningServer(process, port, name, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"model server exited with {process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/v1/models/{name}", timeout=2).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"model server not ready after {timeout}s:\n{server.log()}")


ServeFactory = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def serve_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeFactory]:
    """Start ``kservehelper serve FOLDER`` on a free port; every server stops with the module."""
    servers: list[RunningServer] = []

    def factory(
        folder: pathlib.Path,
        name: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> RunningServer:
        port = free_port()
        log_path = tmp_path_factory.mktemp("server") / "server.log"
        args = [sys.executable, "-m", "kservehelper", "serve", str(folder), "--port", str(port)]
        args += ["--host", "127.0.0.1"]
        server = start_server([*args, "--name", name, *extra], name, log_path, port, env=env)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


def run_cli(
    *args: str, cwd: pathlib.Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the ``kservehelper`` command as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "kservehelper", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=timeout,
    )
