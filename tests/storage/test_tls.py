"""Downloads over HTTPS from a real TLS server: certificates are verified (against
``SSL_CERT_FILE`` when set), through the pinned connection, with one shared TLS context."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from kservehelper.errors import InputError
from kservehelper.storage import policy
from kservehelper.storage.base import StorageSettings
from kservehelper.storage.fetch import fetch_input

PAYLOAD = b"weights" * 1000


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_url(authority: trustme.CA) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 whose certificate names ``localhost``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def trusted_ca(authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def fetch(url: str, origin: str, folder: Path) -> Path:
    settings = StorageSettings(allowed_inputs=(origin,))
    return asyncio.run(fetch_input(url, folder, field="weights", settings=settings))


def test_https_download_verifies_the_servers_certificate(
    https_url: str, trusted_ca: None, tmp_path: Path
) -> None:
    path = fetch(https_url + "/model.bin", https_url, tmp_path)
    assert path.read_bytes() == PAYLOAD


def test_a_certificate_nobody_vouches_for_is_refused(https_url: str, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        fetch(https_url + "/model.bin", https_url, tmp_path)
    assert "does not trust this site's TLS certificate" in str(caught.value)
    assert "SSL_CERT_FILE" in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_clients_share_one_tls_context(trusted_ca: None) -> None:
    first, second = policy.tls_context(), policy.tls_context()
    assert first is second
    assert first.verify_mode is ssl.CERT_REQUIRED and first.check_hostname
