"""A transformer in front of a predictor: two real KServe servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import EXAMPLES, RunningServer, ServeFactory, free_port, run_cli


@pytest.fixture(scope="module")
def predictor(serve_model: ServeFactory) -> RunningServer:
    return serve_model(EXAMPLES / "predictor", "text-stats")


@pytest.fixture(scope="module")
def transformer(serve_model: ServeFactory, predictor: RunningServer) -> RunningServer:
    host = f"127.0.0.1:{predictor.port}"
    return serve_model(EXAMPLES / "transformer", "text-stats", "--predictor-host", host)


def test_request_through_the_transformer_returns_the_combined_result(
    transformer: RunningServer,
) -> None:
    body = {"text": "the cat and The dog and THE bird"}
    answer = httpx.post(transformer.predict_url, json=body, timeout=30).json()
    assert answer["top_words"] == ["the", "and", "bird"]
    assert answer["total"] == 8
    assert answer["running_time"].endswith("s")


def test_transformer_inputs_are_validated_like_predict(transformer: RunningServer) -> None:
    response = httpx.post(transformer.predict_url, json={"text": "", "colour": 1})
    assert response.status_code == 400
    assert {d["loc"][0] for d in response.json()["detail"]} == {"text", "colour"}
    response = httpx.post(transformer.predict_url, json={"text": "!!!"})
    assert response.status_code == 400
    assert response.json()["error"] == "the text has no words to count"


def test_transformer_schema_shows_preprocess_inputs(transformer: RunningServer) -> None:
    schema = httpx.get(f"{transformer.url}/v1/models/text-stats/schema").json()
    assert list(schema["input"]["properties"]) == ["text", "lowercase"]
    assert schema["methods"] == {
        "preprocess": {"path": "/v1/models/text-stats:predict", "output": {"kind": "value"}}
    }


def test_unreachable_predictor_is_a_502_and_fails_readiness(tmp_path: pathlib.Path) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    port = free_port()
    args = [sys.executable, "-m", "kservehelper", "serve", str(EXAMPLES / "transformer")]
    args += ["--port", str(port), "--host", "127.0.0.1", "--predictor-host", host]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # live (it answers), but not ready (its predictor does not)
            assert process.poll() is None and time.monotonic() < deadline
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        assert httpx.get(f"{url}/v1/models/text-stats", timeout=30).status_code == 503
        response = httpx.post(
            f"{url}/v1/models/text-stats:predict", json={"text": "a b"}, timeout=60
        )
        assert response.status_code == 502
        assert "could not be reached" in response.json()["error"]
    finally:
        process.terminate()
        process.wait(30)


def test_transformer_without_predictor_fails_at_start_up() -> None:
    result = run_cli("serve", str(EXAMPLES / "transformer"), "--port", str(free_port()))
    assert result.returncode == 1
    assert "--predictor-host" in result.stderr
    local = run_cli("predict", str(EXAMPLES / "transformer"), "-i", "text=a")
    assert local.returncode == 1
    assert "is a transformer" in local.stderr
