"""KServeModel behaviour over real HTTP: start-up checks, concurrency, hooks, KServe flags."""

from __future__ import annotations

import asyncio
import concurrent.futures
import pathlib
import sys
import threading
import time
from typing import Any

import httpx
import psutil
import pytest

from kservehelper.types import Input
from tests.conftest import (
    EXAMPLES,
    TEST_MODELS,
    RunningServer,
    ServeFactory,
    free_port,
    run_cli,
    start_server,
)


def test_health_answers_while_a_sync_predict_runs(
    serve_model: ServeFactory, tmp_path: pathlib.Path
) -> None:
    server = serve_model(TEST_MODELS / "behaviours", "slow", "--class", "Slow")
    started = tmp_path / "started"
    with concurrent.futures.ThreadPoolExecutor() as pool:
        body = {"seconds": 5, "started": str(started)}
        slow = pool.submit(httpx.post, server.predict_url, json=body, timeout=60)
        while not started.exists():  # the prediction is running from here on
            assert not slow.done(), slow.result().text
            time.sleep(0.02)
        for _ in range(3):
            ready = httpx.get(f"{server.url}/v1/models/slow", timeout=2)
            live = httpx.get(f"{server.url}/", timeout=2)
            assert ready.json() == {"name": "slow", "ready": True}
            assert live.status_code == 200
        assert not slow.done(), "health checks must not wait for the prediction"
        assert slow.result().status_code == 200


def test_max_concurrency_one_queues_requests(serve_model: ServeFactory) -> None:
    server = serve_model(TEST_MODELS / "behaviours", "queued", "--class", "Slow")
    with concurrent.futures.ThreadPoolExecutor() as pool:
        calls = [
            pool.submit(httpx.post, server.predict_url, json={"seconds": 0.5}, timeout=60)
            for _ in range(3)
        ]
        results = [c.result().json() for c in calls]
    assert [r["max_running"] for r in results] == [1, 1, 1]


def test_max_concurrency_can_be_raised(serve_model: ServeFactory) -> None:
    server = serve_model(
        TEST_MODELS / "behaviours", "parallel", "--class", "Slow", "--max-concurrency", "3"
    )
    with concurrent.futures.ThreadPoolExecutor() as pool:
        calls = [
            pool.submit(httpx.post, server.predict_url, json={"seconds": 1.5}, timeout=60)
            for _ in range(3)
        ]
        results = [c.result().json() for c in calls]
    assert max(r["max_running"] for r in results) > 1


def test_async_predict_and_after_predict_hook(serve_model: ServeFactory) -> None:
    server = serve_model(TEST_MODELS / "behaviours", "hooks", "--class", "AsyncHooks")
    body = httpx.post(server.predict_url, json={"text": "abc"}).json()
    assert body["output"] == "ABC"
    assert body["post_processed"] is True
    assert "running_time" in body


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("BadDefault", "default of parameter 'steps' (500) breaks its own constraints"),
        ("Mismatch", "predict() and generate() must take the same inputs"),
        ("NoSuchClass", "no class named 'NoSuchClass'"),
    ],
)
def test_broken_models_fail_at_start_up_with_a_clear_message(
    class_name: str, expected: str
) -> None:
    result = run_cli("serve", str(TEST_MODELS / "behaviours"), "--class", class_name, "--port", "1")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_mismatch_message_names_the_difference() -> None:
    result = run_cli("schema", str(TEST_MODELS / "behaviours"), "--class", "Mismatch")
    assert result.returncode == 1
    assert "predict() has no parameter 'steps'" in result.stderr


def test_kserve_flags_work_when_running_the_model_file(tmp_path: pytest.TempPathFactory) -> None:
    port = free_port()
    model_file = EXAMPLES / "hello" / "model.py"
    args = [sys.executable, str(model_file), "--http_port", str(port), "--enable_grpc", "false"]
    env = {"KSERVEHELPER_HOST": "127.0.0.1"}
    server = start_server(args, "hello", tmp_path / "hello.log", port, env=env)  # type: ignore[operator]
    try:
        body = httpx.post(server.predict_url, json={"name": "Bo", "language": "fr"}).json()
        assert body["greeting"] == "Bonjour, Bo!"
        assert httpx.get(f"{server.url}/v1/models/hello/schema").status_code == 200
    finally:
        server.stop()


def test_load_runs_before_ready(serve_model: ServeFactory) -> None:
    # hello's load() sets the greeting; a request right after readiness must see it.
    server: RunningServer = serve_model(EXAMPLES / "hello", "hello-load")
    assert httpx.post(server.predict_url, json={"name": "X"}).json()["greeting"] == "Hello, X!"


def test_serve_takes_kserve_controller_flags(tmp_path: pathlib.Path) -> None:
    # What KServe's controller appends to a container's args, plus a pass-through flag.
    port = free_port()
    args = [sys.executable, "-m", "kservehelper", "serve", str(EXAMPLES / "hello")]
    args += ["--http_port", str(port), "--model_name", "greeter", "--enable_docs_url", "true"]
    args += ["--host", "127.0.0.1"]
    server = start_server(args, "greeter", tmp_path / "greeter.log", port)
    try:
        assert httpx.post(server.predict_url, json={"name": "Al"}).status_code == 200
        assert httpx.get(f"{server.url}/docs").status_code == 200  # KServe read its own flag
    finally:
        server.stop()


def test_serve_rejects_unknown_options() -> None:
    result = run_cli("serve", str(EXAMPLES / "hello"), "--colour", "red")
    assert result.returncode == 2
    assert "no such option: --colour" in result.stderr


def test_servers_listen_on_the_address_they_are_given(serve_model: ServeFactory) -> None:
    server = serve_model(EXAMPLES / "hello", "hello-private")  # started with --host 127.0.0.1
    listening = {
        conn.laddr.ip
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == server.port
    }
    assert listening == {"127.0.0.1"}


class _Direct:
    """A seed-style model used directly, as kservehelper 2.0's own tests do."""

    def load(self) -> None:
        self.greeting = "hello"

    def predict(self, prompt: str = Input(default="world")) -> dict:
        return {"outputs": f"{self.greeting} {prompt}"}


def test_a_model_can_be_called_directly_from_successive_event_loops() -> None:
    from kservehelper import KServeModel

    model = KServeModel("direct", _Direct)  # load() is called on first use
    payload = {"prompt": "there", "upload_webhook": "http://localhost"}
    for _ in range(3):  # a new event loop each time
        assert asyncio.run(model.predict(payload))["outputs"] == "hello there"
    assert KServeModel.cancelled() is False  # outside a request


class _Parallel:
    def load(self) -> None:
        self.barrier = threading.Barrier(8, timeout=60)

    def predict(self, n: int = Input(default=0)) -> int:
        self.barrier.wait()  # raises if fewer than 8 calls ever run at the same time
        return n


def test_max_concurrency_sync_predicts_really_run_at_once() -> None:
    from kservehelper import KServeModel

    # More than asyncio's default executor would run at once on a small machine.
    model = KServeModel("parallel", _Parallel, max_concurrency=8)

    async def all_at_once() -> list[Any]:
        calls = [model.predict({"n": n}) for n in range(8)]
        return [answer["output"] for answer in await asyncio.gather(*calls)]

    assert asyncio.run(all_at_once()) == list(range(8))
