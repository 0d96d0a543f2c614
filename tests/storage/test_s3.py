"""S3 destination and client against a real SeaweedFS."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import httpx
import pytest

from kservehelper.errors import UploadError
from kservehelper.storage.base import StorageSettings, resolve
from kservehelper.storage.s3 import S3Destination


@pytest.fixture
def settings(seaweedfs) -> StorageSettings:
    return StorageSettings(s3_endpoint_url=seaweedfs.endpoint, attempts=2, backoff=0.05)


def test_upload_returns_presigned_urls_that_download(seaweedfs, settings, tmp_path: Path) -> None:
    bucket = seaweedfs.new_bucket()
    files = []
    for index in range(3):
        path = tmp_path / f"out-{index}.txt"
        path.write_bytes(f"file {index}".encode() * 100)
        files.append(path)
    destination = resolve(f"s3://{bucket}/results", settings)
    assert isinstance(destination, S3Destination)
    urls = asyncio.run(destination.upload_files(files))
    assert len(urls) == 3
    for path, url in zip(files, urls, strict=True):
        assert url.startswith(seaweedfs.endpoint + f"/{bucket}/results/")
        assert "X-Amz-Signature" in url
        response = httpx.get(url)
        assert response.status_code == 200
        assert response.content == path.read_bytes()
        assert response.headers["content-type"] == "text/plain"


def test_plain_uris_and_multipart(seaweedfs, settings, tmp_path: Path) -> None:
    bucket = seaweedfs.new_bucket()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(40 * 1024 * 1024))  # past the multipart threshold
    plain = dataclasses.replace(settings, object_urls="plain")
    (url,) = asyncio.run(resolve(f"s3://{bucket}", plain).upload_files([big]))
    assert url.startswith(f"s3://{bucket}/") and url.endswith("/big.bin")
    key = url.removeprefix(f"s3://{bucket}/")
    head = seaweedfs.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == big.stat().st_size
    assert "-" in head["ETag"]  # multipart ETags carry the part count


def test_missing_bucket_is_an_upload_error_naming_the_file(settings, tmp_path: Path) -> None:
    path = tmp_path / "result.png"
    path.write_bytes(b"png")
    destination = resolve("s3://no-such-bucket-kservehelper/x", settings)
    with pytest.raises(UploadError, match=r"result\.png.*no-such-bucket"):
        asyncio.run(destination.upload_files([path]))


def test_unreachable_endpoint_is_retried_then_fails(tmp_path: Path) -> None:
    from tests.fixtures_storage import free_port

    settings = StorageSettings(
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}", attempts=2, backoff=0.01
    )
    path = tmp_path / "a.txt"
    path.write_text("a")
    with pytest.raises(UploadError, match=r"'a\.txt'.*after 2 attempts"):
        asyncio.run(resolve("s3://bucket/x", settings).upload_files([path]))
