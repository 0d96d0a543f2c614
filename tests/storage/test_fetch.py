"""Input files from URLs: http(s) (a real local server), s3:// (SeaweedFS), gs:// (fake-gcs)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kservehelper.errors import InputError
from kservehelper.storage.base import StorageSettings
from kservehelper.storage.fetch import fetch_input
from tests.fixtures_storage import free_port


def fetch(uri: str, folder: Path, limit: int = 10_000, **settings: object) -> Path:
    """Download ``uri``; a loopback test server is admitted by the allow-list unless the test
    gives its own."""
    if uri.startswith("http://127.0.0.1:") and "allowed_inputs" not in settings:
        settings["allowed_inputs"] = ("/".join(uri.split("/")[:3]),)
    return asyncio.run(
        fetch_input(
            uri,
            folder,
            field="image",
            max_bytes=limit,
            settings=StorageSettings(**settings),  # type: ignore[arg-type]
        )
    )


def error_of(uri: str, folder: Path, limit: int = 10_000, **settings: object) -> InputError:
    with pytest.raises(InputError) as caught:
        fetch(uri, folder, limit, **settings)
    assert caught.value.detail[0]["loc"] == ["image"]
    assert not any(folder.rglob("*")) or all(p.is_dir() for p in folder.rglob("*"))
    return caught.value


def test_http_download_keeps_the_file_name(bad_peer, tmp_path) -> None:
    path = fetch(bad_peer.url + "/bytes/1234/photo.jpg?sig=abc", tmp_path)
    assert path.name == "photo.jpg" and path.stat().st_size == 1234


def test_http_errors_are_400s_naming_the_field(bad_peer, tmp_path) -> None:
    assert error_of(bad_peer.url + "/missing.png", tmp_path).detail[0]["type"] == "url_status"
    assert "HTTP 404" in str(error_of(bad_peer.url + "/missing.png", tmp_path))
    unreachable = error_of(f"http://127.0.0.1:{free_port()}/x.png", tmp_path)
    assert unreachable.detail[0]["type"] == "url_unreachable"
    announced = error_of(bad_peer.url + "/bytes/20000/big.bin", tmp_path)
    assert "20000 bytes" in str(announced) and announced.detail[0]["type"] == "file_too_large"
    streamed = error_of(bad_peer.url + "/endless", tmp_path, limit=3 << 20)
    assert streamed.detail[0]["type"] == "file_too_large"
    unknown = error_of("ftp://example.com/x.png", tmp_path)
    assert unknown.detail[0]["type"] == "unsupported_scheme"


def test_inputs_outside_the_allow_list_are_400s(bad_peer, seaweedfs, tmp_path) -> None:
    allowed = {"allowed_inputs": (bad_peer.url + "/bytes", "s3://public")}
    assert fetch(bad_peer.url + "/bytes/10/ok.bin", tmp_path / "a", **allowed).stat().st_size == 10
    for uri in (bad_peer.url + "/bytes-elsewhere/10/x.bin", "s3://private/secret.txt"):
        refused = error_of(uri, tmp_path / "b", **allowed)
        assert refused.detail[0]["type"] == "input_not_allowed"


def test_s3_objects(seaweedfs, tmp_path) -> None:
    bucket = seaweedfs.new_bucket()
    seaweedfs.client().put_object(Bucket=bucket, Key="in/cat.png", Body=b"c" * 500)
    seaweedfs.client().put_object(Bucket=bucket, Key="in/huge.bin", Body=b"h" * 20_000)
    endpoint = {"s3_endpoint_url": seaweedfs.endpoint}
    path = fetch(f"s3://{bucket}/in/cat.png", tmp_path / "a", **endpoint)
    assert path.name == "cat.png" and path.read_bytes() == b"c" * 500
    missing = error_of(f"s3://{bucket}/in/nope.png", tmp_path / "b", **endpoint)
    assert missing.detail[0]["type"] == "object_missing"
    huge = error_of(f"s3://{bucket}/in/huge.bin", tmp_path / "c", **endpoint)
    assert huge.detail[0]["type"] == "file_too_large"


def test_gcs_objects(fake_gcs, tmp_path) -> None:
    bucket = fake_gcs.new_bucket()
    fake_gcs.client().bucket(bucket).blob("in/dog.jpg").upload_from_string(b"d" * 300)
    endpoint = {"gcs_endpoint_url": fake_gcs.endpoint}
    path = fetch(f"gs://{bucket}/in/dog.jpg", tmp_path / "a", **endpoint)
    assert path.read_bytes() == b"d" * 300
    missing = error_of(f"gs://{bucket}/in/nope.jpg", tmp_path / "b", **endpoint)
    assert missing.detail[0]["type"] == "object_missing"
