"""The webhook protocols end to end: runtime-side destinations against the bundled upload
server (a real subprocess, backed by SeaweedFS or a folder) and against a bad peer."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kservehelper.errors import InputError, UploadError
from kservehelper.storage.base import Destination, StorageSettings
from kservehelper.storage.put import PutDestination
from kservehelper.storage.registry import resolve as resolve_destination
from kservehelper.storage.webhook import WebhookDestination
from tests.fixtures_storage import UploadServer, start_upload_server, stop_process


def resolve(url: str, settings: StorageSettings) -> Destination:
    """A request's destination on a loopback test server: admitted by the allow-list (and as
    an upload-token origin), as an operator running the upload server next door would."""
    origin = "/".join(url.split("/")[:3])
    admitted = dataclasses.replace(settings, allowed=(origin,), token_origins=(origin,))
    return resolve_destination(url, admitted)


def make_files(folder: Path, count: int, size: int = 5000) -> list[Path]:
    paths = []
    for index in range(count):
        path = folder / f"result-{index}.png"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


@pytest.fixture
def with_token(upload_server_s3: UploadServer) -> StorageSettings:
    return StorageSettings(token=upload_server_s3.token, attempts=2, backoff=0.05)


@pytest.fixture(scope="module")
def folder_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadServer]:
    folder = tmp_path_factory.mktemp("uploads")
    server, process = start_upload_server(str(folder), None, "--max-size-mb", "1")
    try:
        yield server
    finally:
        stop_process(process)


@pytest.mark.parametrize("protocol", ["upload", "upload_batch"])
def test_webhook_protocols_store_in_s3(upload_server_s3, with_token, tmp_path, protocol) -> None:
    paths = make_files(tmp_path, 4)
    destination = resolve(f"{upload_server_s3.url}/{protocol}", with_token)
    assert isinstance(destination, WebhookDestination)
    urls = asyncio.run(destination.upload_files(paths))
    assert len(urls) == 4
    for path, url in zip(paths, urls, strict=True):
        assert "/outputs/" in url and url.split("?")[0].endswith(path.name)
        assert httpx.get(url).content == path.read_bytes()


def test_put_protocol_uses_location(upload_server_s3, with_token, tmp_path) -> None:
    (path,) = make_files(tmp_path, 1)
    destination = resolve(upload_server_s3.url + "/anything", with_token)
    assert isinstance(destination, PutDestination)
    (url,) = asyncio.run(destination.upload_files([path]))
    # The Location is a presigned URL; the runtime drops its query string, as Cog does.
    assert "?" not in url and url.endswith("/result-0.png")


def test_wrong_token_is_401_and_not_retried(upload_server_s3, tmp_path) -> None:
    (path,) = make_files(tmp_path, 1)
    settings = StorageSettings(token="wrong", attempts=3, backoff=0.05)
    with pytest.raises(UploadError, match=r"'result-0\.png'.*HTTP 401") as caught:
        asyncio.run(resolve(upload_server_s3.url + "/upload", settings).upload_files([path]))
    assert "attempts" not in str(caught.value)


def test_folder_destination_serves_files_back(folder_server, tmp_path) -> None:
    paths = make_files(tmp_path, 2)
    settings = StorageSettings(attempts=1)
    urls = asyncio.run(resolve(folder_server.url + "/upload_batch", settings).upload_files(paths))
    for path, url in zip(paths, urls, strict=True):
        assert url.startswith(folder_server.url + "/files/")
        assert httpx.get(url).content == path.read_bytes()
    (url,) = asyncio.run(resolve(folder_server.url + "/x", settings).upload_files(paths[:1]))
    assert httpx.get(url).content == paths[0].read_bytes()


def test_bad_requests_get_clear_4xx(folder_server, tmp_path) -> None:
    url = folder_server.url
    response = httpx.post(url + "/upload", data={"other": "x"})
    assert response.status_code == 400 and "'file' field" in response.json()["error"]
    response = httpx.post(url + "/upload_batch", files={"file_0": ("a.txt", b"a")})
    assert response.status_code == 400 and "NUM_FILES" in response.json()["error"]
    response = httpx.post(
        url + "/upload_batch", files={"file_0": ("a.txt", b"a")}, headers={"NUM_FILES": "2"}
    )
    assert response.status_code == 400 and "file_1" in response.json()["error"]
    response = httpx.post(url + "/upload", files={"file": ("big.bin", os.urandom(2 << 20))})
    assert response.status_code == 413


def test_oversized_output_is_an_upload_error(folder_server, tmp_path) -> None:
    (path,) = make_files(tmp_path, 1, size=2 << 20)
    with pytest.raises(UploadError, match=r"result-0\.png.*HTTP 413"):
        asyncio.run(resolve(folder_server.url + "/upload", StorageSettings()).upload_files([path]))


def test_flaky_peer_is_retried_until_it_succeeds(bad_peer, tmp_path) -> None:
    paths = make_files(tmp_path, 1)
    settings = StorageSettings(attempts=3, backoff=0.01)
    urls = asyncio.run(resolve(bad_peer.url + "/flaky/a/upload", settings).upload_files(paths))
    assert urls == ["http://files.invalid/ok"]
    assert bad_peer.counts["/flaky/a/upload"] == 3


def test_flaky_peer_with_too_few_attempts_fails(bad_peer, tmp_path) -> None:
    paths = make_files(tmp_path, 2)
    settings = StorageSettings(attempts=2, backoff=0.01)
    with pytest.raises(UploadError, match=r"'result-0\.png', 'result-1\.png'.*after 2.*HTTP 500"):
        asyncio.run(resolve(bad_peer.url + "/flaky/b/upload_batch", settings).upload_files(paths))


def test_silent_peer_times_out(bad_peer, tmp_path) -> None:
    paths = make_files(tmp_path, 1)
    settings = StorageSettings(attempts=2, backoff=0.01, timeout=0.5)
    with pytest.raises(UploadError, match=r"'result-0\.png'.*after 2 attempts.*timed out"):
        asyncio.run(resolve(bad_peer.url + "/hang/upload", settings).upload_files(paths))


def test_invalid_json_is_final(bad_peer, tmp_path) -> None:
    paths = make_files(tmp_path, 1)
    settings = StorageSettings(attempts=3, backoff=0.01)
    with pytest.raises(UploadError, match=r"invalid JSON: <html>not json</html>"):
        asyncio.run(resolve(bad_peer.url + "/badjson/c/upload", settings).upload_files(paths))
    assert bad_peer.counts["/badjson/c/upload"] == 1


def test_put_peer_without_location_uses_request_url(bad_peer, tmp_path) -> None:
    (path,) = make_files(tmp_path, 1)
    settings = StorageSettings(attempts=3, backoff=0.01)
    (url,) = asyncio.run(resolve(bad_peer.url + "/flaky/put?sig=1", settings).upload_files([path]))
    assert url == bad_peer.url + "/flaky/put/result-0.png"


def test_allow_list_and_unknown_schemes_are_input_errors() -> None:
    settings = StorageSettings(allowed=("s3://models/out", "https://hooks.example.com/"))
    assert resolve_destination("s3://models/out/run1", settings).uri == "s3://models/out/run1"
    resolve_destination("https://hooks.example.com/upload", settings)
    for uri in ("s3://models/output", "https://evil.example.com/upload", "gs://models/out"):
        with pytest.raises(InputError) as caught:
            resolve_destination(uri, settings)
        assert caught.value.detail[0]["loc"] == ["upload_webhook"]
    with pytest.raises(InputError, match="unknown destination"):
        resolve_destination("ftp://host/x", dataclasses.replace(settings, allowed=()))


def test_upload_server_prints_the_settings_that_admit_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.fixtures_storage import free_port

    port = free_port()
    command = [sys.executable, "-c", "from kservehelper.cli import main; main()",
               "upload-server", "--dest", str(tmp_path), "--port", str(port),
               "--token", "t"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        stop_process(process)
    origin = f"http://127.0.0.1:{port}"
    assert f"KSERVEHELPER_ALLOWED_DESTINATIONS={origin}\n" in [line.lstrip() for line in lines]
    assert f"KSERVEHELPER_UPLOAD_TOKEN_ORIGINS={origin}\n" in [line.lstrip() for line in lines]
