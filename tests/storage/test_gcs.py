"""GCS destination and client against a real fake-gcs-server."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import httpx
import pytest

from kservehelper.errors import UploadError
from kservehelper.storage.base import StorageSettings, resolve
from kservehelper.storage.gcs import GCSDestination


@pytest.fixture
def settings(fake_gcs) -> StorageSettings:
    return StorageSettings(gcs_endpoint_url=fake_gcs.endpoint, attempts=2, backoff=0.05)


def test_upload_and_download_through_the_returned_url(fake_gcs, settings, tmp_path) -> None:
    bucket = fake_gcs.new_bucket()
    path = tmp_path / "blurred.jpg"
    path.write_bytes(os.urandom(1000))
    destination = resolve(f"gs://{bucket}/runs", settings)
    assert isinstance(destination, GCSDestination)
    (url,) = asyncio.run(destination.upload_files([path]))
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == path.read_bytes()
    blob = fake_gcs.client().bucket(bucket).get_blob(url.split("/o/")[1].split("?")[0]
                                                     .replace("%2F", "/"))  # fmt: skip
    assert blob.content_type == "image/jpeg"


def test_large_file_goes_up_in_chunks_and_plain_uri(fake_gcs, settings, tmp_path) -> None:
    bucket = fake_gcs.new_bucket()
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(20 * 1024 * 1024))
    plain = dataclasses.replace(settings, object_urls="plain")
    (uri,) = asyncio.run(resolve(f"gs://{bucket}/p", plain).upload_files([path]))
    assert uri.startswith(f"gs://{bucket}/p/") and uri.endswith("/big.bin")
    blob = fake_gcs.client().bucket(bucket).get_blob(uri.removeprefix(f"gs://{bucket}/"))
    assert blob.size == path.stat().st_size


def test_signed_url_with_service_account_key(fake_gcs, settings, tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.oauth2 import service_account

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "client_email": "signer@test.iam.gserviceaccount.com",
            "private_key": pem,
            "token_uri": "http://127.0.0.1:9/token",
            "project_id": "test",
        }
    )
    bucket = fake_gcs.new_bucket()
    path = tmp_path / "signed.txt"
    path.write_text("signed content")
    destination = GCSDestination(f"gs://{bucket}/s", settings, signing_credentials=credentials)
    (url,) = asyncio.run(destination.upload_files([path]))
    assert "X-Goog-Signature=" in url and "X-Goog-Expires=86400" in url
    assert url.startswith(f"{fake_gcs.endpoint}/{bucket}/s/")
    # fake-gcs-server serves path-style object URLs on its public host (it checks no signature)
    response = httpx.get(url, headers={"Host": "storage.googleapis.com"})
    assert response.text == "signed content"


def test_missing_bucket_fails_naming_the_file(settings, tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("x")
    with pytest.raises(UploadError, match=r"'x\.txt'.*gs://no-such-bucket"):
        asyncio.run(resolve("gs://no-such-bucket/p", settings).upload_files([path]))
