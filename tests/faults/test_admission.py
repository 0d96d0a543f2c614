"""The admission queue under load: a bounded wait, then a fast 503 with Retry-After."""

from __future__ import annotations

import concurrent.futures
import pathlib

import httpx

from tests.faults.conftest import Marks, ServeFault, post, wait_until


def test_a_full_queue_is_a_503_at_once_in_our_error_shape(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("SyncWork", "--max-queue", "2")
    gate = tmp_path / "gate"
    with concurrent.futures.ThreadPoolExecutor() as pool:
        body = {"tag": "running", "marks": str(marks), "gate": str(gate)}
        running = pool.submit(post, server.predict_url, body)
        marks.wait("running", "started")
        queued = [
            pool.submit(post, server.predict_url, {"tag": f"queued{i}", "marks": str(marks)})
            for i in range(2)
        ]
        wait_until(lambda: server.metric("kservehelper_queue_length", model="fault") == 2, "queue")
        refused = post(server.predict_url, {"tag": "refused", "marks": str(marks)})
        assert refused.status_code == 503
        assert refused.json()["type"] == "ServerBusy"
        assert "KSERVEHELPER_MAX_QUEUE=2" in refused.json()["error"]
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["retry_after"] == int(refused.headers["Retry-After"])
        # Health is not queued behind the model.
        assert httpx.get(f"{server.url}/v1/models/fault", timeout=10).status_code == 200
        gate.touch()
        assert running.result().status_code == 200
        assert [q.result().status_code for q in queued] == [200, 200]
    assert not marks.has("refused", "started")
    assert server.metric("kservehelper_queue_length", model="fault") == 0
    assert server.metric("kservehelper_slots_in_use", model="fault") == 0
    rejected = server.metric(
        "kservehelper_rejected_requests_total", model="fault", reason="queue_full"
    )
    assert rejected == 1
    assert server.metric("kservehelper_queue_wait_seconds_count", model="fault") == 3  # not 503s


def test_retry_after_follows_recent_predict_times(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("SyncWork", "--max-queue", "0")
    assert post(server.predict_url, {"seconds": 3}).status_code == 200  # held its slot >= 3 s
    gate = tmp_path / "gate"
    with concurrent.futures.ThreadPoolExecutor() as pool:
        body = {"tag": "running", "marks": str(marks), "gate": str(gate)}
        running = pool.submit(post, server.predict_url, body)
        marks.wait("running", "started")
        refused = post(server.predict_url, {})  # max_queue 0: busy means refused
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 3
        gate.touch()
        assert running.result().status_code == 200
