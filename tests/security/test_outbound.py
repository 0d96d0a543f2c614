"""The outbound policy through a real model server: a request cannot make it reach inside.

Loopback listeners count the connections they accept: a refused URL causes none.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningServer, ServeFactory, free_port, run_cli
from tests.fixtures_storage import CountingServer, run_counting_server
from tests.security.checks import MODELS, error_of

TOKEN = "upload-token-only-for-the-operator"


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[CountingServer, CountingServer, CountingServer]]:
    with run_counting_server() as a, run_counting_server() as b, run_counting_server() as c:
        yield a, b, c


@pytest.fixture(scope="module")
def closed_server(serve_model: ServeFactory) -> RunningServer:
    """No allow-lists: requests may reach public addresses only."""
    return serve_model(MODELS, "closed", "--class", "FileSize")


@pytest.fixture(scope="module")
def local_dev(serve_model: ServeFactory, peers) -> RunningServer:
    """Local development: the loopback peers are allow-list entries, the token goes to the
    operator's destination (peer c) and one named origin (peer b)."""
    a, b, c = peers
    env = {
        "KSERVEHELPER_ALLOWED_INPUTS": a.url,
        "KSERVEHELPER_ALLOWED_DESTINATIONS": f"{a.url},{b.url}",
        "KSERVEHELPER_UPLOAD_TOKEN": TOKEN,
        "KSERVEHELPER_UPLOAD_TOKEN_ORIGINS": b.url,
        "KSERVEHELPER_UPLOAD_TO": c.url + "/upload",
    }
    return serve_model(MODELS, "text", "--class", "TextFile", env=env)


def test_request_urls_to_loopback_are_refused_without_a_connection(
    closed_server: RunningServer, peers
) -> None:
    a, _, _ = peers
    before = a.connections
    port = a.server_address[1]
    for url in (
        f"{a.url}/bytes/10/x.bin",
        f"http://localhost:{port}/bytes/10",
        f"http://[::1]:{port}/",
        f"http://2130706433:{port}/",
        f"http://0x7f.1:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
    ):
        body = error_of(httpx.post(closed_server.predict_url, json={"document": url}), 400)
        assert body["detail"][0]["loc"] == ["document"], url
        assert "KSERVEHELPER_ALLOWED_INPUTS" in body["error"] or "spelling" in body["error"]
    assert a.connections == before


def test_one_allow_list_entry_admits_a_local_input_server(serve_model: ServeFactory, peers) -> None:
    a, b, _ = peers
    env = {"KSERVEHELPER_ALLOWED_INPUTS": f"{a.url}/bytes"}
    server = serve_model(MODELS, "local-inputs", "--class", "FileSize", env=env)
    before_a, before_b = a.connections, b.connections
    response = httpx.post(server.predict_url, json={"document": f"{a.url}/bytes/1234/in.bin"})
    assert response.status_code == 200, response.text
    assert (response.json()["size"], response.json()["name"]) == (1234, "in.bin")
    for escape in (f"{a.url}/bytes/../headers", f"{a.url}/bytes/%2e%2e/headers",
                   f"{a.url}/headers", f"{b.url}/bytes/1"):  # fmt: skip
        error_of(httpx.post(server.predict_url, json={"document": escape}), 400)
    assert (a.connections, b.connections) == (before_a + 1, before_b)


def test_webhook_paths_cannot_escape_with_dot_segments(local_dev: RunningServer, peers) -> None:
    a, _, _ = peers
    response = httpx.post(local_dev.predict_url, json={"text": "x", "upload_webhook": a.url})
    assert response.status_code == 200, response.text  # a PUT destination on an allowed host
    refused = httpx.post(
        local_dev.predict_url, json={"upload_webhook": f"{a.url}/upload/../../admin"}
    )
    assert error_of(refused, 400)["detail"][0]["type"] == "url_path_traversal"


def test_upload_token_goes_only_where_the_operator_said(local_dev: RunningServer, peers) -> None:
    a, b, c = peers
    for webhook in (f"{a.url}/upload", f"{b.url}/upload", None):
        body = {"text": "hi"} if webhook is None else {"text": "hi", "upload_webhook": webhook}
        response = httpx.post(local_dev.predict_url, json=body, timeout=60)
        assert response.status_code == 200, response.text
    (*_, (_, _, to_request_webhook)) = a.requests
    (*_, (_, _, to_named_origin)) = b.requests
    (*_, (_, _, to_operator_destination)) = c.requests
    assert "Authorization" not in to_request_webhook
    assert to_named_origin["Authorization"] == f"Bearer {TOKEN}"
    assert to_operator_destination["Authorization"] == f"Bearer {TOKEN}"


def test_request_webhook_to_a_private_address_is_refused_before_predict(
    closed_server: RunningServer, peers, serve_model: ServeFactory
) -> None:
    server = serve_model(MODELS, "text-closed", "--class", "TextFile")
    _, b, _ = peers
    before = b.connections
    response = httpx.post(server.predict_url, json={"upload_webhook": f"{b.url}/upload"})
    body = error_of(response, 400)
    assert "KSERVEHELPER_ALLOWED_DESTINATIONS" in body["error"]
    assert f"http://127.0.0.1:{b.server_address[1]}" in body["error"]  # the entry to add
    assert b.connections == before


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--upload-to", "ftp://files/out"], {}, "is not a destination"),
        (["--upload-to", "/proc/kservehelper-nope"], {}, "cannot write"),
        ([], {"KSERVEHELPER_ALLOWED_INPUTS": "example.com/in"}, "KSERVEHELPER_ALLOWED_INPUTS"),
    ],
)
def test_bad_outbound_settings_stop_the_server_with_one_line(
    args: list[str], env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = run_cli(
        "serve", str(MODELS), "--class", "TextFile", "--port", str(free_port()),
        "--host", "127.0.0.1", *args, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
