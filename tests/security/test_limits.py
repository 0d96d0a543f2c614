"""Size and connection limits of a real model server: what a hostile client cannot make it hold.

Peak memory is measured from the kernel's high-water mark of the server process (VmHWM, reset
through /proc/PID/clear_refs before each request).
"""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib
import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningServer, ServeFactory
from tests.security.checks import MODELS, assert_error_shape, error_of, parse_raw, raw_exchange

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def limited(serve_model: ServeFactory) -> RunningServer:
    env = {
        "KSERVEHELPER_MAX_REQUEST_BYTES": str(1 * MiB),
        "KSERVEHELPER_MAX_INPUT_BYTES": "100000",
        "KSERVEHELPER_HEADER_TIMEOUT": "1",
        "KSERVEHELPER_BODY_TIMEOUT": "1",
        "KSERVEHELPER_MAX_CONNECTIONS": "40",
    }
    return serve_model(MODELS, "filesize", "--class", "FileSize", env=env)


@pytest.fixture(scope="module")
def echo(serve_model: ServeFactory) -> RunningServer:
    return serve_model(MODELS, "echo", "--class", "Echo")


def data_uri(payload: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(payload).decode()


def test_announced_oversized_body_is_refused_before_it_is_read(limited: RunningServer) -> None:
    head = (
        "POST /v1/models/filesize:predict HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
    )
    answer = raw_exchange(limited.port, head.encode() + b'{"document": "')  # then silence
    status, content_type, body = parse_raw(answer)
    assert status == 413
    error = assert_error_shape(status, content_type, body)["error"]
    assert "KSERVEHELPER_MAX_REQUEST_BYTES" in error


def test_streamed_oversized_body_is_cut_off_at_the_limit(limited: RunningServer) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"document": "data:text/plain;base64,'
        for _ in range(400):  # 25 MiB, announced by no Content-Length
            sent += 65536
            yield b"A" * 65536

    try:
        response = httpx.post(limited.predict_url, content=chunks(), timeout=60)
    except httpx.HTTPError:  # the server may close while the client still writes
        pytest.skip("the client could not read the 413 after the server closed the connection")
    error_of(response, 413)
    assert sent < 400 * 65536
    assert httpx.get(limited.url + "/v2/health/live").status_code == 200


@pytest.mark.parametrize("size", [150_000, 600_000])  # under / over the spooling threshold
def test_max_input_bytes_applies_to_data_uris(limited: RunningServer, size: int) -> None:
    response = httpx.post(limited.predict_url, json={"document": data_uri(os.urandom(size))})
    body = error_of(response, 400)
    assert body["detail"][0]["loc"] == ["document"]
    assert body["detail"][0]["type"] == "file_too_large"
    assert f"{size} bytes" in body["error"] and "KSERVEHELPER_MAX_INPUT_BYTES" in body["error"]
    small = os.urandom(90_000)
    answer = httpx.post(limited.predict_url, json={"document": data_uri(small)}).json()
    assert answer["sha256"] == hashlib.sha256(small).hexdigest()


def test_a_data_uri_in_a_string_input_arrives_as_sent(echo: RunningServer) -> None:
    text = data_uri(os.urandom(700_000))
    blob = os.urandom(500_000)
    response = httpx.post(echo.predict_url, json={"text": text, "blob": data_uri(blob)})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["digest"] == hashlib.sha256(text.encode()).hexdigest()
    assert answer["length"] == len(text) and answer["blob_size"] == len(blob)
    broken = "data:application/octet-stream;base64," + "A" * 600_001  # not valid base64
    error = error_of(httpx.post(echo.predict_url, json={"blob": broken}), 400)
    assert error["detail"][0]["loc"] == ["blob"]


def _peak_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_peak_memory_of_a_large_data_uri_stays_near_the_body_size(
    serve_model: ServeFactory,
) -> None:
    server = serve_model(MODELS, "rss", "--class", "FileSize")
    clear_refs = pathlib.Path(f"/proc/{server.process.pid}/clear_refs")
    try:
        clear_refs.write_text("5")
    except OSError as error:
        pytest.skip(f"cannot reset the peak RSS of the server process: {error}")
    payload = os.urandom(48 * MiB)
    body = ('{"document": "' + data_uri(payload) + '"}').encode()
    warm = httpx.post(server.predict_url, json={"document": data_uri(b"warm")}, timeout=60)
    assert warm.status_code == 200
    clear_refs.write_text("5")
    before = _rss_kib(server.process.pid)
    response = httpx.post(
        server.predict_url, content=body, headers={"Content-Type": "application/json"}, timeout=300
    )
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    ratio = (_peak_kib(server.process.pid) - before) * 1024 / len(body)
    print(f"\npeak memory of one {len(body) / MiB:.0f} MiB request: {ratio:.2f}x its body")
    assert ratio < 1.5


def test_half_open_connections_are_closed_and_cannot_keep_clients_out(
    limited: RunningServer,
) -> None:
    """60 half-open connections to a server keeping 40: the oldest make room for new ones, a
    real request still gets through, and all of them are closed after the 1 s header timeout
    (a partial request gets a 408 first)."""
    selector = selectors.DefaultSelector()
    sockets = []
    for index in range(60):
        sock = socket.create_connection(("127.0.0.1", limited.port))
        if index % 2:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")  # never finished
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        sockets.append(sock)
    during = httpx.get(limited.url + "/v2/health/live", timeout=30).status_code
    answers: dict[socket.socket, bytes] = {}
    closed: set[socket.socket] = set()
    deadline = time.monotonic() + 60
    while len(closed) < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            sock = key.fileobj
            try:
                data = sock.recv(65536)  # type: ignore[union-attr]
            except OSError:
                data = b""
            if data:
                answers[sock] = answers.get(sock, b"") + data  # type: ignore[index]
            else:
                closed.add(sock)  # type: ignore[arg-type]
                selector.unregister(sock)
    for sock in sockets:
        sock.close()
    assert during == 200
    assert len(closed) == 60
    statuses = [parse_raw(answer)[0] for answer in answers.values()]
    for answer in answers.values():
        assert_error_shape(*parse_raw(answer))
    assert set(statuses) == {408} and len(statuses) <= 30  # only the partial requests


def test_a_stalled_body_is_a_408(limited: RunningServer) -> None:
    head = (
        "POST /v1/models/filesize:predict HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    status, content_type, body = parse_raw(raw_exchange(limited.port, head.encode() + b'{"doc'))
    assert status == 408
    assert "KSERVEHELPER_BODY_TIMEOUT" in assert_error_shape(status, content_type, body)["error"]


def test_past_the_cap_with_every_connection_busy_new_ones_get_503(
    serve_model: ServeFactory,
) -> None:
    env = {"KSERVEHELPER_MAX_CONNECTIONS": "10", "KSERVEHELPER_BODY_TIMEOUT": "60"}
    server = serve_model(MODELS, "busy", "--class", "FileSize", env=env)
    head = (
        b"POST /v1/models/busy:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    busy = []
    try:
        for _ in range(10):  # requests in flight: their bodies never finish
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            busy.append(sock)
            sock.sendall(head)
            # "100 Continue": the server has the headers and the route is reading the body.
            assert sock.recv(1024).startswith(b"HTTP/1.1 100")
            sock.sendall(b"{")
        status, content_type, body = parse_raw(raw_exchange(server.port, b""))
        assert status == 503
        assert "KSERVEHELPER" not in body and "10 open connections" in body
        assert_error_shape(status, content_type, body)
    finally:
        for sock in busy:
            sock.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the closed ones are gone once the server notices
        try:
            if httpx.get(server.url + "/v2/health/live", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise AssertionError("the server did not recover after the busy connections closed")
