"""@batch over HTTP: concurrent requests grouped into one call, each answered on its own."""

from __future__ import annotations

import base64
import concurrent.futures
import pathlib
import re
import time
from typing import Any

import httpx
import pytest

from kservehelper import batch
from tests.conftest import RunningServer, ServeFactory, run_cli

MODEL = pathlib.Path(__file__).resolve().parent / "models" / "batched"


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("gate") / "open"


def _gauge(server: RunningServer, name: str) -> float:
    metrics = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf'{name}{{model="{server.name}"}} ([\d.]+)', metrics)
    return float(match.group(1)) if match else 0.0


def _wait_until(check: Any) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, "the server never got there"
        time.sleep(0.05)


def _pile_up(
    server: RunningServer,
    gate: pathlib.Path,
    bodies: list[dict[str, Any]],
    holder_body: dict[str, Any],
    valid: int | None = None,
) -> list[httpx.Response]:
    """Hold the model with one request, queue ``bodies`` behind it, then let all run."""
    gate.unlink(missing_ok=True)
    valid = len(bodies) if valid is None else valid
    with concurrent.futures.ThreadPoolExecutor(len(bodies) + 1) as pool:
        holder = pool.submit(
            httpx.post, server.predict_url, json={**holder_body, "hold": True}, timeout=60
        )
        _wait_until(lambda: _gauge(server, "kservehelper_slots_in_use") == 1)
        calls = [pool.submit(httpx.post, server.predict_url, json=b, timeout=60) for b in bodies]
        # The valid requests wait in the batch, and the batch itself waits for the slot.
        _wait_until(lambda: _gauge(server, "kservehelper_queue_length") >= valid + 1)
        gate.touch()
        assert holder.result().status_code == 200
        return [call.result() for call in calls]


def _batched_server(
    serve_model: ServeFactory, gate: pathlib.Path, name: str, cls: str
) -> RunningServer:
    return serve_model(MODEL, name, "--class", cls, env={"BATCH_GATE": str(gate)})


def test_concurrent_requests_run_as_one_batch_each_with_its_own_answer(
    serve_model: ServeFactory, gate: pathlib.Path
) -> None:
    server = _batched_server(serve_model, gate, "batched", "Model")
    bodies: list[dict[str, Any]] = [{"text": f"t{i}"} for i in range(5)]
    bodies.append({"text": "far too long"})  # invalid: its own 400, never in the batch
    bodies.append({"text": "bad", "fail": True})  # the model's ValueError for this one: 400
    responses = _pile_up(server, gate, bodies, {"text": "hold"}, valid=6)
    for i in range(5):
        assert responses[i].status_code == 200, responses[i].text
        assert responses[i].json()["text"] == f"T{i}"
    sizes = {responses[i].json()["batch"] for i in range(5)}
    assert sizes == {6}  # five good ones and the failing one, in one call
    assert responses[5].status_code == 400
    assert responses[5].json()["detail"][0]["loc"] == ["text"]
    assert responses[6].status_code == 400
    assert "cannot take 'bad'" in responses[6].json()["error"]
    # Idle: a lone request runs at once, in a batch of one.
    alone = httpx.post(server.predict_url, json={"text": "solo"})
    assert alone.json()["batch"] == 1
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'kservehelper_batch_size_count{method="predict",model="batched"}' in metrics
    assert "kservehelper_batch_wait_seconds_bucket" in metrics


def test_async_batched_methods_batch_too(serve_model: ServeFactory, gate: pathlib.Path) -> None:
    server = _batched_server(serve_model, gate, "batched-async", "AsyncModel")
    responses = _pile_up(server, gate, [{"text": f"a{i}"} for i in range(4)], {"text": "h"})
    assert [r.json()["text"] for r in responses] == ["A0", "A1", "A2", "A3"]
    assert {r.json()["batch"] for r in responses} == {4}


def test_files_go_to_each_requests_own_answer(
    serve_model: ServeFactory, gate: pathlib.Path
) -> None:
    server = _batched_server(serve_model, gate, "batched-files", "Files")
    responses = _pile_up(server, gate, [{"text": f"f{i}"} for i in range(3)], {})
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        (url,) = response.json()["output"]  # one file, as for an unbatched -> Path
        assert url.startswith("data:")
        assert base64.b64decode(url.split(",", 1)[1]).decode() == f"f{i} of 3"


def test_streams_go_to_each_requests_own_answer(
    serve_model: ServeFactory, gate: pathlib.Path
) -> None:
    server = _batched_server(serve_model, gate, "batched-streams", "Streams")
    responses = _pile_up(server, gate, [{"count": n} for n in (1, 2, 3)], {})
    for n, response in zip((1, 2, 3), responses, strict=True):
        assert response.status_code == 200
        lines = [line for line in response.text.splitlines() if line]
        assert len(lines) == n, response.text
    # The streams gave the slot back: the next request is served.
    assert httpx.post(server.predict_url, json={"count": 2}, timeout=30).status_code == 200


def test_a_model_returning_the_wrong_number_of_results_is_a_clear_500(
    serve_model: ServeFactory,
) -> None:
    server = serve_model(MODEL, "batched-wrong", "--class", "WrongLength")
    response = httpx.post(server.predict_url, json={"text": "x"})
    assert response.status_code == 500
    assert "returned 0 result(s)" in response.json()["error"]
    assert httpx.post(server.predict_url, json={"text": "x"}).status_code == 500  # still serving


@pytest.mark.parametrize(
    ("size", "wait", "message"),
    [(0, 10, "max_size"), (True, 10, "max_size"), (4, -1, "max_wait_ms"), (4, "x", "max_wait_ms")],
)
def test_bad_batch_settings_are_refused_with_what_to_use(
    size: Any, wait: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        batch(max_size=size, max_wait_ms=wait)


def test_a_generator_method_cannot_be_batched() -> None:
    with pytest.raises(TypeError, match="one generator per request"):

        @batch()
        def predict(text: list[str]) -> Any:
            yield from text


def test_kservehelper_predict_runs_a_batched_model_as_a_batch_of_one(
    tmp_path: pathlib.Path,
) -> None:
    result = run_cli("predict", str(MODEL), "-i", "text=hi")
    assert result.returncode == 0, result.stderr
    assert '"batch": 1' in result.stdout and '"HI"' in result.stdout
    out = tmp_path / "out"
    result = run_cli("predict", str(MODEL), "--class", "Files", "-i", "text=f", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "f.txt").read_text() == "f of 1"
