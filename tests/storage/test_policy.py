"""The outbound policy: addresses, redirects, pinned connections, token scope, the operator's
destination (URL parsing and allow-lists: ``test_urls.py``).

Network behaviour is checked against real loopback listeners that count the connections they
accept: a refused URL must cause none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from pathlib import Path

import httpx
import pytest

from kservehelper.errors import ConfigError, InputError
from kservehelper.storage import policy
from kservehelper.storage.base import StorageSettings
from kservehelper.storage.fetch import fetch_input
from kservehelper.storage.registry import resolve
from tests.fixtures_storage import CountingServer

# -- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "100.100.100.200", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fd00:ec2::254", "fec0::1", "ff02::1", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe",
        "2002:c0a8:0101::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert policy.non_public_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert policy.non_public_reason(ipaddress.ip_address(address)) is None


# -- input downloads against counting listeners -----------------------------------------------


def fetch(url: str, folder: Path, *allowed: str) -> Path:
    settings = StorageSettings(allowed_inputs=tuple(allowed))
    return asyncio.run(fetch_input(url, folder, field="image", max_bytes=10_000, settings=settings))


def refused(url: str, folder: Path, *allowed: str) -> InputError:
    with pytest.raises(InputError) as caught:
        fetch(url, folder, *allowed)
    assert caught.value.detail[0]["loc"] == ["image"]
    assert not any(p.is_file() for p in folder.rglob("*"))
    return caught.value


def test_loopback_input_is_refused_without_a_connection(listener: CountingServer, tmp_path) -> None:
    error = refused(listener.url + "/bytes/10/x.bin", tmp_path)
    assert error.detail[0]["type"] == "address_not_allowed"
    assert "KSERVEHELPER_ALLOWED_INPUTS" in str(error) and listener.url in str(error)
    for spelling in ("http://localhost:{}/bytes/1", "http://[::1]:{}/bytes/1",
                     "http://[::ffff:127.0.0.1]:{}/bytes/1", "http://0x7f.1:{}/bytes/1",
                     "http://2130706433:{}/bytes/1"):  # fmt: skip
        refused(spelling.format(listener.server_address[1]), tmp_path)
    assert listener.connections == 0


def test_one_allow_list_entry_admits_a_local_server(listener: CountingServer, tmp_path) -> None:
    host_only = fetch(listener.url + "/bytes/10/a.bin", tmp_path / "a", "http://127.0.0.1")
    assert host_only.read_bytes() == b"b" * 10
    with_port = fetch(listener.url + "/bytes/20/b.bin", tmp_path / "b", listener.url)
    assert with_port.stat().st_size == 20
    assert listener.connections == 2


def test_dot_segments_cannot_escape_an_allowed_prefix(listener: CountingServer, tmp_path) -> None:
    allowed = listener.url + "/bytes"
    assert fetch(listener.url + "/bytes/5/ok.bin", tmp_path / "ok", allowed).stat().st_size == 5
    for escape in ("/bytes/../headers", "/bytes/%2e%2e/headers", "/bytes/%2E%2e/headers",
                   "/bytes/.%2e/headers", "/bytes%2f..%2fheaders", "/bytes-other/5"):  # fmt: skip
        error = refused(listener.url + escape, tmp_path / "refused", allowed)
        assert error.detail[0]["type"] in ("url_path_traversal", "input_not_allowed")
    assert listener.connections == 1


def test_redirects_are_checked_again(
    listener: CountingServer, second_listener: CountingServer, tmp_path
) -> None:
    inside = f"{listener.url}/redirect?to=/bytes/7/moved.bin"
    assert fetch(inside, tmp_path / "a", listener.url).stat().st_size == 7
    assert listener.connections >= 1
    before = listener.connections
    # To a host the allow-list does not name: refused, the other host never contacted.
    elsewhere = f"{listener.url}/redirect?to={second_listener.url}/bytes/7/x.bin"
    assert refused(elsewhere, tmp_path / "b", listener.url).detail[0]["type"] == (
        "input_not_allowed"
    )
    # To cloud metadata: refused before any connection is attempted.
    metadata = f"{listener.url}/redirect?to=http://169.254.169.254/latest/meta-data/"
    assert "link-local" in str(refused(metadata, tmp_path / "c", listener.url))
    assert refused(listener.url + "/loop", tmp_path / "d", listener.url).detail[0]["type"] == (
        "url_redirects"
    )
    assert second_listener.connections == 0
    assert listener.connections > before


def test_connections_go_to_the_checked_address_with_the_host_header(
    listener: CountingServer,
) -> None:
    port = listener.server_address[1]
    rule = policy.ConnectRule(frozenset({"localhost"}), "TEST")

    async def get() -> httpx.Response:
        async with policy.pinned_client(rule) as client:
            return await client.get(f"http://localhost:{port}/headers")

    response = asyncio.run(get())
    assert response.json()["Host"] == f"localhost:{port}"
    assert listener.connections == 1
    # Without the entry, the name's addresses are checked when connecting: refused.
    with pytest.raises(policy.AddressRefused, match="loopback"):
        asyncio.run(policy.ConnectRule().checked_addresses("localhost", port))


def test_a_name_resolving_to_loopback_is_refused_when_connecting(
    listener: CountingServer, tmp_path
) -> None:
    """A host name passes the literal check; its addresses are checked when connecting."""
    import socket

    name = socket.gethostname().lower()
    port = listener.server_address[1]
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if not resolved or not all(ipaddress.ip_address(a).is_loopback for a in resolved):
        pytest.skip(f"this machine's name {name!r} does not resolve to loopback only")
    error = refused(f"http://{name}:{port}/bytes/3/x.bin", tmp_path / "a")
    assert error.detail[0]["type"] == "address_not_allowed" and "loopback" in str(error)
    assert listener.connections == 0
    admitted = fetch(f"http://{name}:{port}/headers", tmp_path / "b", f"http://{name}")
    assert listener.connections == 1 and f"{name}:{port}" in admitted.read_text()


# -- destinations and the upload token --------------------------------------------------------


def deliver(url: str, tmp_path: Path, settings: StorageSettings, **resolve_options: object) -> str:
    path = tmp_path / "out.txt"
    path.write_text("out")
    destination = resolve(url, settings, **resolve_options)  # type: ignore[arg-type]

    async def run() -> str:
        try:
            return (await destination.upload_files([path]))[0]
        finally:
            await destination.aclose()

    return asyncio.run(run())


def test_request_webhooks_on_private_addresses_are_refused_before_predict(
    listener: CountingServer,
) -> None:
    with pytest.raises(InputError) as caught:
        resolve(listener.url + "/upload", StorageSettings())
    message = str(caught.value)
    assert caught.value.detail[0]["loc"] == ["upload_webhook"]
    assert "KSERVEHELPER_ALLOWED_DESTINATIONS" in message and "http://127.0.0.1:" in message
    with pytest.raises(InputError, match="local folder"):
        resolve("/tmp/outputs", StorageSettings())
    assert listener.connections == 0


def test_token_goes_only_to_origins_the_operator_named(
    listener: CountingServer, second_listener: CountingServer, tmp_path
) -> None:
    settings = StorageSettings(
        token="s3cr3t-token", allowed=(listener.url, second_listener.url),
        token_origins=(second_listener.url,),
    )  # fmt: skip
    deliver(listener.url + "/upload", tmp_path, settings)
    deliver(second_listener.url + "/upload", tmp_path, settings)
    deliver(listener.url + "/upload", tmp_path, dataclasses.replace(settings, allowed=()),
            trusted=True)  # fmt: skip
    (_, _, to_request_webhook), (_, _, to_operator) = listener.requests
    ((_, _, to_named_origin),) = second_listener.requests
    assert "Authorization" not in to_request_webhook
    assert to_named_origin["Authorization"] == "Bearer s3cr3t-token"
    assert to_operator["Authorization"] == "Bearer s3cr3t-token"


def test_operator_destination_is_checked_at_start_up(tmp_path: Path) -> None:
    policy.trust_operator_destination(str(tmp_path / "outputs"))
    assert (tmp_path / "outputs").is_dir()
    assert policy.is_trusted_destination(str(tmp_path / "outputs"))
    for bad, message in (
        ("ftp://host/x", "not a destination"),
        ("outputs", "absolute folder"),
        ("s3://", "not a destination"),
        ("/proc/kservehelper-cannot-write-here", "cannot write"),
    ):
        with pytest.raises(ConfigError, match=message) as caught:
            policy.trust_operator_destination(bad)
        assert "\n" not in str(caught.value)
