"""Streams over real HTTP: incremental delivery, JSON lines and SSE framing, errors, generate()."""

from __future__ import annotations

import json
import pathlib

import httpx
import pytest

from tests.conftest import EXAMPLES, TEST_MODELS, RunningServer, ServeFactory


@pytest.fixture(scope="module")
def streams(serve_model: ServeFactory) -> RunningServer:
    return serve_model(TEST_MODELS / "behaviours", "streams", "--class", "Streams")


def read_records(response: httpx.Response) -> list[dict[str, object]]:
    return [json.loads(line) for line in response.iter_lines() if line]


@pytest.mark.parametrize("shape", ["generator", "async", "wrapped"])
def test_items_arrive_before_the_stream_ends(
    streams: RunningServer, tmp_path: pathlib.Path, shape: str
) -> None:
    gate = tmp_path / f"gate-{shape}"
    body = {"shape": shape, "count": 3, "gate": str(gate)}
    with httpx.stream("POST", streams.predict_url, json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = response.iter_lines()
        # Item 1 is only produced once the gate opens: item 0 must already be here.
        assert json.loads(next(lines)) == {"id": 0, "data": {"n": 0}}
        gate.touch()
        rest = [json.loads(line) for line in lines if line]
    assert rest == [{"id": 1, "data": {"n": 1}}, {"id": 2, "data": {"n": 2}}]


def test_server_sent_events_when_asked(streams: RunningServer) -> None:
    headers = {"Accept": "text/event-stream"}
    body = {"shape": "generator", "count": 2}
    response = httpx.post(streams.predict_url, json=body, headers=headers, timeout=60)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text == ('data: {"id":0,"data":{"n":0}}\n\ndata: {"id":1,"data":{"n":1}}\n\n')


def test_an_exception_mid_stream_ends_with_an_error_record(streams: RunningServer) -> None:
    response = httpx.post(streams.predict_url, json={"shape": "fails", "count": 5}, timeout=60)
    records = [json.loads(line) for line in response.text.splitlines()]
    assert records[:2] == [{"id": 0, "data": {"n": 0}}, {"id": 1, "data": {"n": 1}}]
    assert records[2] == {
        "id": 2,
        "error": {"type": "RuntimeError", "message": "the model broke mid-stream"},
    }
    assert len(records) == 3
    sse = httpx.post(
        streams.predict_url,
        json={"shape": "fails", "count": 5},
        headers={"Accept": "text/event-stream"},
        timeout=60,
    ).text
    assert sse.endswith(
        'event: error\ndata: {"id":2,"error":{"type":"RuntimeError",'
        '"message":"the model broke mid-stream"}}\n\n'
    )
    # The server keeps serving.
    assert len(read_records(httpx.post(streams.predict_url, json={"count": 2}))) == 2


def test_stream_inputs_are_validated(streams: RunningServer) -> None:
    response = httpx.post(streams.predict_url, json={"shape": "zigzag"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["shape"]


def test_a_long_stream_arrives_complete_and_in_order(streams: RunningServer) -> None:
    response = httpx.post(streams.predict_url, json={"count": 5000}, timeout=120)
    records = read_records(response)
    assert [r["id"] for r in records] == list(range(5000))
    assert records[-1]["data"] == {"n": 4999}


def test_seed_streaming_example_predict_and_generate(serve_model: ServeFactory) -> None:
    server = serve_model(EXAMPLES / "streaming", "streaming")
    body = {"repeat": 3, "delay": 0}
    records = read_records(httpx.post(server.predict_url, json=body, timeout=60))
    assert records == [{"id": i, "data": "Hello World!"} for i in range(3)]
    generate_url = f"{server.url}/v1/models/streaming:generate"
    records = read_records(httpx.post(generate_url, json=body, timeout=60))
    assert records == [{"id": i, "data": {"index": i, "text": "Hello World!"}} for i in range(3)]
    bad = httpx.post(generate_url, json={"repeat": 0})
    assert bad.status_code == 400
    assert bad.json()["detail"][0]["type"] == "greater_than_equal"
    schema = httpx.get(f"{server.url}/v1/models/streaming/schema").json()
    assert schema["methods"]["generate"] == {
        "path": "/v1/models/streaming:generate",
        "output": {"kind": "stream", "items": "value"},
    }


def test_a_client_leaving_mid_stream_frees_the_model_for_the_next_request(
    streams: RunningServer, tmp_path: pathlib.Path
) -> None:
    gate = tmp_path / "gate"
    body = {"shape": "generator", "count": 1000, "gate": str(gate)}
    with httpx.stream("POST", streams.predict_url, json=body, timeout=60) as response:
        assert json.loads(next(response.iter_lines())) == {"id": 0, "data": {"n": 0}}
    # The client is gone while the generator waits on the gate. Once it may go on, it is
    # stopped after that item (not run to item 999), and max_concurrency 1 lets the next
    # request in only once the abandoned generator has stopped.
    gate.touch()
    after = httpx.post(streams.predict_url, json={"count": 1}, timeout=60)
    assert after.status_code == 200
    assert read_records(after) == [{"id": 0, "data": {"n": 0}}]
