"""The connection guard on both of uvicorn's HTTP implementations (KServe picks httptools when
it is installed, h11 otherwise), served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from kservehelper.serving.connections import GuardedH11Protocol, GuardedHttpToolsProtocol
from kservehelper.settings import reset_settings
from tests.conftest import free_port
from tests.security.checks import assert_error_shape, parse_raw, raw_exchange


async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"12")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b'{"ok": true}'})


@pytest.fixture(params=[GuardedH11Protocol, GuardedHttpToolsProtocol], ids=["h11", "httptools"])
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("KSERVEHELPER_HEADER_TIMEOUT", "1")
    monkeypatch.setenv("KSERVEHELPER_MAX_HEADER_BYTES", "8192")
    monkeypatch.setenv("KSERVEHELPER_MAX_CONNECTIONS", "5")
    reset_settings()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=request.param,
                            lifespan="off", log_level="critical")  # fmt: skip
    served = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(served.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not served.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    served.should_exit = True
    thread.join(timeout=30)


def test_malformed_http_is_a_json_400(server: int) -> None:
    status, content_type, body = parse_raw(raw_exchange(server, b"NONSENSE\r\n\r\n"))
    assert status == 400 and "malformed HTTP request" in body
    assert_error_shape(status, content_type, body)


def test_headers_too_large_while_arriving_are_a_431(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sock.sendall(b"X-Padding: " + b"a" * 10_000 + b"\r\n")  # and the headers never end
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status, content_type, body = parse_raw(answer)
    assert status == 431
    assert_error_shape(status, content_type, body)


def test_silent_and_slow_connections_are_closed(server: int) -> None:
    silent = socket.create_connection(("127.0.0.1", server), timeout=30)
    slow = socket.create_connection(("127.0.0.1", server), timeout=30)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert silent.recv(1024) == b""  # closed without a word once the header timeout passes
    status, content_type, body = parse_raw(slow.recv(65536))
    assert status == 408
    assert_error_shape(status, content_type, body)
    silent.close()
    slow.close()
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert parse_raw(raw_exchange(server, request))[0] == 200


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, read whole."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))  # fmt: skip
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_kept_alive_connections_are_not_cut_short(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200")
            time.sleep(1.5)  # longer than the header timeout: idle between requests is fine


def test_at_the_cap_the_longest_waiting_connection_makes_room(server: int) -> None:
    idle = [socket.create_connection(("127.0.0.1", server), timeout=30) for _ in range(5)]
    try:
        request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert parse_raw(raw_exchange(server, request))[0] == 200  # the 6th connection
        assert idle[0].recv(1024) == b""  # the oldest silent one was closed for it
    finally:
        for sock in idle:
            sock.close()
