"""What every error answer of the server must look like, and raw-socket helpers."""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
import socket

import httpx

REPO = pathlib.Path(__file__).resolve().parents[2]
MODELS = pathlib.Path(__file__).resolve().parent / "models"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def assert_error_shape(status: int, content_type: str, text: str) -> dict:
    """A 4xx/5xx answer: JSON ``{"error": str, "detail"?: [...], "type"?: str}``, nothing that
    leaks the server's insides (traceback, memory address, file paths)."""
    assert status >= 400, text
    assert content_type.startswith("application/json"), (content_type, text)
    body = json.loads(text)
    assert isinstance(body, dict) and set(body) <= {"error", "detail", "type", "retry_after"}, body
    assert isinstance(body["error"], str) and body["error"], body
    if "detail" in body:
        assert isinstance(body["detail"], list), body
        for item in body["detail"]:
            assert {"loc", "msg", "type"} <= set(item), item
    assert "Traceback" not in text and 'File "' not in text, text
    assert not _ADDRESS.search(text), text
    assert str(REPO) not in text and "site-packages" not in text, text
    return body


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    return assert_error_shape(
        response.status_code, response.headers.get("content-type", ""), response.text
    )


def raw_exchange(port: int, data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # the server may close before reading everything
            sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def parse_raw(answer: bytes) -> tuple[int, str, str]:
    """``(status, content type, body)`` of one raw HTTP/1.1 response."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers.get("content-type", ""), body.decode()
