"""SIGTERM drains the server; SIGKILL leaves folders that the next server reclaims."""

from __future__ import annotations

import concurrent.futures
import json
import pathlib
import signal

import httpx

from tests.faults.conftest import (
    WAIT,
    FaultServer,
    Marks,
    ServeFault,
    WalkingClient,
    post,
    wait_until,
)


def terminate(server: FaultServer) -> None:
    server.server.process.send_signal(signal.SIGTERM)


def exit_code(server: FaultServer) -> int:
    return server.server.process.wait(WAIT)


def readiness(server: FaultServer) -> int:
    return httpx.get(f"{server.url}/v1/models/fault", timeout=10).status_code


def test_sigterm_finishes_running_and_queued_requests_and_refuses_new_ones(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("SyncWork", env={"KSERVEHELPER_SHUTDOWN_GRACE": "120"})
    gate = tmp_path / "gate"
    with concurrent.futures.ThreadPoolExecutor() as pool:
        running = pool.submit(
            post, server.predict_url, {"tag": "running", "marks": str(marks), "gate": str(gate)}
        )
        marks.wait("running", "started")
        queued = pool.submit(post, server.predict_url, {"tag": "queued", "marks": str(marks)})
        wait_until(lambda: server.metric("kservehelper_queue_length", model="fault") == 1, "queue")
        terminate(server)
        wait_until(lambda: readiness(server) == 503, "readiness to fail")
        late = post(server.predict_url, {"tag": "late", "marks": str(marks)})
        assert late.status_code == 503
        assert late.json()["type"] == "ShuttingDown"
        assert int(late.headers["Retry-After"]) >= 1
        assert not running.done() and not queued.done()
        gate.touch()
        assert running.result().json()["tag"] == "running"
        assert queued.result().json()["tag"] == "queued"
    assert exit_code(server) == 0
    assert not marks.has("late", "started")
    assert server.process_folders() == []
    log = server.server.log()  # readiness probes while draining are 503s, not tracebacks
    assert "Traceback" not in log, log[log.find("Traceback") - 200 :]


def test_after_the_grace_period_the_rest_get_503_and_the_process_exits(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("SyncWork", env={"KSERVEHELPER_SHUTDOWN_GRACE": "1"})
    never = tmp_path / "never-opened"
    with concurrent.futures.ThreadPoolExecutor() as pool:
        body = {"tag": "stuck", "marks": str(marks), "gate": str(never), "scratch": True}
        stuck = pool.submit(post, server.predict_url, body)
        marks.wait("stuck", "started")
        queued = pool.submit(post, server.predict_url, {"tag": "queued", "marks": str(marks)})
        wait_until(lambda: server.metric("kservehelper_queue_length", model="fault") == 1, "queue")
        terminate(server)
        for answer in (stuck.result(), queued.result()):
            assert answer.status_code == 503
            assert answer.json()["type"] == "ShuttingDown"
            assert "KSERVEHELPER_SHUTDOWN_GRACE" in answer.json()["error"]
    # The stuck predict's thread cannot be stopped, but it does not keep the process alive.
    assert exit_code(server) == 0
    assert not marks.has("queued", "started")
    assert server.process_folders() == []


def test_a_stream_open_at_the_end_of_the_grace_period_ends_with_an_error_record(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("Stream", env={"KSERVEHELPER_SHUTDOWN_GRACE": "1"})
    never = tmp_path / "never-opened"
    body = {"tag": "stream", "marks": str(marks), "gate": str(never), "count": 5}
    with httpx.stream("POST", server.predict_url, json=body, timeout=WAIT) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines)) == {"id": 0, "data": {"n": 0}}
        terminate(server)
        rest = [json.loads(line) for line in lines if line]
    assert rest[-1]["error"]["type"] == "ShuttingDown"
    assert exit_code(server) == 0


def test_sigterm_drains_every_worker_process(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    server = serve_fault("SyncWork", "--workers", "2", env={"KSERVEHELPER_SHUTDOWN_GRACE": "120"})
    gate = tmp_path / "gate"
    with concurrent.futures.ThreadPoolExecutor() as pool:
        running = pool.submit(
            post, server.predict_url, {"tag": "running", "marks": str(marks), "gate": str(gate)}
        )
        marks.wait("running", "started")
        terminate(server)
        wait_until(lambda: readiness(server) == 503, "readiness to fail")
        gate.touch()
        assert running.result().json()["tag"] == "running"
    assert exit_code(server) == 0
    assert server.process_folders() == []


def test_folders_of_a_killed_server_are_removed_by_the_next_one_and_no_others(
    serve_fault: ServeFault, marks: Marks, tmp_path: pathlib.Path
) -> None:
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir()
    alive = serve_fault("SyncWork", tmp=shared_tmp, name="alive")
    assert post(alive.predict_url, {"scratch": True}).status_code == 200  # makes its folder
    [alive_folder] = alive.process_folders()

    victim = serve_fault("SyncWork", tmp=shared_tmp, name="victim")
    never = tmp_path / "never-opened"
    body = {"tag": "victim", "marks": str(marks), "gate": str(never), "scratch": True}
    client = WalkingClient(victim.server.predict_url, body)  # stays connected until killed
    marks.wait("victim", "started")
    victim_folder = next(p for p in victim.process_folders() if p != alive_folder)
    wait_until(lambda: any(victim_folder.rglob("*.tmp")), "the victim's output file")
    victim.server.process.send_signal(signal.SIGKILL)
    victim.server.process.wait(WAIT)
    client.leave()
    assert victim_folder.exists()  # SIGKILL leaves it behind

    serve_fault("SyncWork", tmp=shared_tmp, name="restarted")
    assert not victim_folder.exists()
    assert alive_folder.exists()  # a live server's folder is never touched
    assert post(alive.predict_url, {"scratch": True}).status_code == 200
