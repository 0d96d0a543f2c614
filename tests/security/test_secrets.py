"""``Secret`` values never leave the server: not in docs, schemas, error bodies or logs."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import RunningServer, ServeFactory
from tests.security.checks import MODELS, error_of

DEFAULT = "sk-default-4711-0815"  # Secretive's api_key default
SENT = ["sess-alpha-31337", "sess-beta-42-quoted", "sk-sent-key-9000", "stream-token-555"]


@pytest.fixture(scope="module")
def server(serve_model: ServeFactory) -> RunningServer:
    return serve_model(MODELS, "secretive", "--class", "Secretive")


@pytest.fixture(scope="module")
def stream_server(serve_model: ServeFactory) -> RunningServer:
    return serve_model(MODELS, "secretstream", "--class", "SecretStream")


def test_defaults_are_masked_in_docs_and_absent_from_schemas(server: RunningServer) -> None:
    docs = httpx.get(f"{server.url}/v1/docs/secretive").json()
    assert docs["api_key"]["default"] == "**********"
    for path in ("/v1/docs/secretive", "/v1/models/secretive/schema", "/openapi.json"):
        assert DEFAULT not in httpx.get(server.url + path).text


def test_error_bodies_quote_no_secret(server: RunningServer) -> None:
    raised = httpx.post(server.predict_url, json={"session": SENT[0], "mode": "raise"})
    body = error_of(raised, 500)
    assert body["error"] == "RuntimeError: upstream refused key ********** for session **********"
    value = httpx.post(server.predict_url, json={"session": SENT[1], "mode": "value"})
    assert error_of(value, 400)["error"] == "session ********** is not valid"
    invalid = httpx.post(
        server.predict_url, json={"session": SENT[1], "api_key": SENT[2], "mode": "nope"}
    )
    assert not any(secret in invalid.text for secret in SENT)
    error_of(invalid, 400)


def test_logs_quote_no_secret(server: RunningServer) -> None:
    sent = {"session": SENT[2], "api_key": SENT[1], "mode": "log"}
    assert httpx.post(server.predict_url, json=sent).status_code == 200
    log = server.log()
    assert "calling upstream with ********** and **********" in log
    assert "ConnectionError: refused: **********" in log  # the logged traceback
    assert "RuntimeError: upstream refused key **********" in log  # the 500 above, logged


def test_a_stream_error_quotes_no_secret(stream_server: RunningServer) -> None:
    body = {"token": SENT[3]}
    with httpx.stream("POST", stream_server.predict_url, json=body, timeout=30) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert lines[0]["data"] == "first"
    assert lines[1]["error"]["message"] == "stream broke while using **********"
    assert SENT[3] not in stream_server.log()


def test_nothing_anywhere_quotes_a_secret(server: RunningServer) -> None:
    """Runs last in this module: the whole log of everything above."""
    log = server.log()
    assert "**********" in log
    for secret in [DEFAULT, *SENT[:3]]:
        assert secret not in log
