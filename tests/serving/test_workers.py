"""workers=N: KServe's multi-process server, each process with its own model copy."""

from __future__ import annotations

import concurrent.futures

import httpx

from tests.conftest import TEST_MODELS, ServeFactory


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
