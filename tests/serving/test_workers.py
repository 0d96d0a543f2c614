"""workers=N: KServe's multi-process server, each process with its own model copy."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import TEST_MODELS, RunningServer, ServeFactory, free_port

MODELS = pathlib.Path(__file__).resolve().parent / "models"


def test_several_processes_answer_concurrently(serve_model: ServeFactory) -> None:
    server = serve_model(TEST_MODELS / "behaviours", "timed", "--class", "Timed", "--workers", "2")
    # Which process accepts a connection is up to the kernel: try a few rounds until two
    # requests ran at the same time in two processes (each process runs one at a time).
    for _ in range(10):
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            calls = [
                pool.submit(httpx.post, server.predict_url, json={"seconds": 1}, timeout=60)
                for _ in range(2)
            ]
            first, second = (call.result().json() for call in calls)
        overlapping = first["began"] < second["ended"] and second["began"] < first["ended"]
        if first["pid"] != second["pid"] and overlapping:
            break
    else:
        raise AssertionError("two worker processes never ran predictions at the same time")


def test_workers_serve_kservehelper_routes(serve_model: ServeFactory) -> None:
    server = serve_model(TEST_MODELS / "behaviours", "timed2", "--class", "Timed", "--workers", "2")
    for _ in range(6):  # whichever process answers, validation and schema are kservehelper's
        response = httpx.post(server.predict_url, json={"seconds": 99})
        assert response.status_code == 400
        assert response.json()["detail"][0]["type"] == "less_than_equal"
    schema = httpx.get(f"{server.url}/v1/models/timed2/schema")
    assert schema.json()["input"]["properties"]["seconds"]["maximum"] == 10


def test_a_load_longer_than_the_parents_ping_timeout_keeps_its_workers(
    tmp_path: pathlib.Path,
) -> None:
    """KServe's parent kills a worker that does not answer its ping within 5 s: a worker
    must answer while its model loads (and say not ready), not load while it starts."""
    gate = tmp_path / "loaded"
    port = free_port()
    log_path = tmp_path / "server.log"
    args = [sys.executable, "-m", "kservehelper", "serve", str(MODELS / "slow_load")]
    args += ["--port", str(port), "--host", "127.0.0.1", "--name", "slow", "--workers", "2"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SLOW_LOAD_GATE": str(gate)},
        )
    server = RunningServer(process, port, "slow", log_path)
    try:
        children = _wait_for(lambda: _child_pids(server.log()), "two worker processes", 2)
        # Each worker answers while its load() waits: readiness 503, not a refused connection.
        _wait_for(lambda: _status(f"{server.url}/v1/models/slow") == 503, "a not-ready answer")
        time.sleep(KSERVE_PING_TIMEOUT + 3)  # longer than the parent waits for a pong
        assert _child_pids(server.log()) == children, server.log()
        assert "died" not in server.log(), server.log()
        assert _status(f"{server.url}/v1/models/slow") == 503
        assert httpx.post(server.predict_url, json={}).status_code == 503

        gate.touch()
        _wait_for(lambda: _status(f"{server.url}/v1/models/slow") == 200, "readiness")
        pids = set()
        for _ in range(20):
            response = httpx.post(server.predict_url, json={"text": "x"}, timeout=30)
            assert response.status_code == 200, response.text
            pids.add(response.json()["pid"])
        assert pids <= set(children)
        assert _child_pids(server.log()) == children, server.log()
    finally:
        server.stop()


KSERVE_PING_TIMEOUT = 5  # RESTServerProcess.is_alive's default in KServe 0.21


def _child_pids(log: str) -> list[int] | None:
    pids = [int(pid) for pid in re.findall(r"Started (?:new )?child process \[(\d+)\]", log)]
    return pids if pids else None


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


def _wait_for(check: Callable[[], Any], what: str, count: int | None = None) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        value = check()
        if value and (count is None or len(value) >= count):
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within 120 s")
