"""A client that leaves takes its work with it, at every stage of its request.

Each test holds the model at a known point with a gate file, makes the client leave, and
reads what the model recorded (``tests/faults/models/model.py``). ``max_concurrency`` is 1
everywhere, so "the next request runs" proves the abandoned one gave its slot back.
"""

from __future__ import annotations

import pathlib

from tests.faults.conftest import (
    FaultPeer,
    Marks,
    ServeFault,
    WalkingClient,
    post,
    wait_until,
)


def test_a_queued_request_whose_client_left_never_runs(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("SyncWork")
    gate = tmp_path / "gate"
    first = WalkingClient(
        server.predict_url, {"tag": "first", "marks": str(marks), "gate": str(gate)}
    )
    marks.wait("first", "started")
    queued = WalkingClient(server.predict_url, {"tag": "queued", "marks": str(marks)})
    wait_until(lambda: server.metric("kservehelper_queue_length", model="fault") == 1, "queued")
    queued.leave()
    wait_until(
        lambda: server.metric("kservehelper_queue_length", model="fault") == 0,
        "the abandoned request to leave the queue",
    )
    gate.touch()
    first.read_until(b'"tag":"first"')
    first.leave()
    assert post(server.predict_url, {"tag": "after", "marks": str(marks)}).status_code == 200
    assert not marks.has("queued", "started"), "the abandoned request ran"
    abandoned = server.metric(
        "kservehelper_abandoned_requests_total",
        model="fault",
        stage="queued",
        reason="ClientDisconnected",
    )
    assert abandoned == 1


def test_a_running_async_predict_is_cancelled(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("AsyncWork")
    never = tmp_path / "never-opened"
    client = WalkingClient(
        server.predict_url, {"tag": "left", "marks": str(marks), "gate": str(never)}
    )
    marks.wait("left", "started")
    client.leave()
    marks.wait("left", "cancelled")
    # Its slot is free: the next request runs although the gate never opens for the first.
    assert post(server.predict_url, {"tag": "next", "marks": str(marks)}).json()["tag"] == "next"
    assert not marks.has("left", "finished")


def test_a_running_sync_predict_sees_cancelled_and_its_files_are_removed(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("SyncWork")
    never = tmp_path / "never-opened"
    body = {"tag": "left", "marks": str(marks), "gate": str(never), "scratch": True}
    client = WalkingClient(server.predict_url, body)
    marks.wait("left", "started")
    wait_until(lambda: any(p.suffix == ".tmp" for p in server.leftover_files()), "scratch file")
    client.leave()
    marks.wait("left", "cancelled")  # KServeModel.cancelled() turned true
    answer = post(server.predict_url, {"tag": "next", "marks": str(marks)})
    assert answer.json()["tag"] == "next"
    # The slot came back only after the abandoned predict returned.
    assert marks.when("left", "cancelled") <= marks.when("next", "started")
    assert server.leftover_files() == []  # its output file is gone


def test_a_stream_whose_client_left_stops_within_one_item(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("Stream")
    gate = tmp_path / "gate"
    body = {"tag": "stream", "marks": str(marks), "gate": str(gate), "count": 50}
    client = WalkingClient(server.predict_url, body)
    client.read_until(b'{"id":0,')
    client.leave()
    # The next request queues behind the stream's slot...
    waiting = WalkingClient(server.predict_url, {"tag": "stream2", "marks": str(marks), "count": 1})
    wait_until(lambda: server.metric("kservehelper_queue_length", model="fault") == 1, "queued")
    # ...and the generator, blocked in next(), produces at most the item it is working on.
    gate.touch()
    marks.wait("stream", "finally")
    produced = {e for e in marks.events("stream") if e.startswith("item-")}
    assert produced <= {"item-0", "item-1"}
    waiting.read_until(b'{"id":0,')
    waiting.leave()
    # The slot was released only after the generator had stopped.
    assert marks.when("stream", "finally") <= marks.when("stream2", "started")


def test_an_async_stream_whose_client_left_is_closed(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("AsyncStream")
    never = tmp_path / "never-opened"
    body = {"tag": "stream", "marks": str(marks), "gate": str(never), "count": 50}
    client = WalkingClient(server.predict_url, body)
    client.read_until(b'{"id":0,')
    client.leave()
    marks.wait("stream", "finally")  # its finally ran although its gate never opened
    assert marks.events("stream") == {"started", "item-0", "finally"}
    assert post(server.predict_url, {"count": 1}, timeout=30).status_code == 200


def test_stream_files_made_but_not_sent_are_removed(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("FileStream")
    gate = tmp_path / "gate"
    body = {"tag": "files", "marks": str(marks), "gate": str(gate), "count": 5}
    client = WalkingClient(server.predict_url, body)
    client.read_until(b'{"id":0,')
    wait_until(lambda: len(server.leftover_files()) >= 1, "item 1's file")
    client.leave()
    gate.touch()
    marks.wait("files", "finally")
    wait_until(lambda: server.leftover_files() == [], "the stream's files to be removed")


def test_an_input_download_stops_when_the_client_leaves(
    serve_fault: ServeFault, marks: Marks, fault_peer: FaultPeer
) -> None:
    env = {"KSERVEHELPER_ALLOWED_INPUTS": fault_peer.url}
    server = serve_fault("Files", env=env)
    source = f"{fault_peer.url}/trickle/big.bin"
    client = WalkingClient(server.predict_url, {"source": source, "marks": str(marks)})
    wait_until(lambda: fault_peer.saw("sent:/trickle/big.bin"), "the download to start")
    wait_until(lambda: len(server.leftover_files()) == 1, "the partial input file")
    client.leave()
    wait_until(lambda: fault_peer.saw("left:/trickle/big.bin"), "the download to stop")
    wait_until(lambda: server.leftover_files() == [], "the partial input to be removed")
    assert not marks.has("files", "started")
    # The server goes on serving.
    assert post(server.predict_url, {"marks": str(marks)}).status_code == 200


def test_a_delivery_stops_when_the_client_leaves(
    serve_fault: ServeFault, marks: Marks, fault_peer: FaultPeer
) -> None:
    env = {"KSERVEHELPER_UPLOAD_TO": f"{fault_peer.url}/hang/upload"}
    server = serve_fault("Files", env=env)
    client = WalkingClient(server.predict_url, {"copies": 2, "marks": str(marks)})
    wait_until(lambda: fault_peer.saw("post:/hang/upload"), "the upload to start")
    client.leave()
    wait_until(lambda: fault_peer.saw("left:/hang/upload"), "the upload to stop")
    wait_until(lambda: server.leftover_files() == [], "the output files to be removed")
