"""Google Cloud Storage, through google-cloud-storage.

Credentials come from Application Default Credentials; ``STORAGE_EMULATOR_HOST`` (or
:attr:`StorageSettings.gcs_endpoint_url`) points the client at an emulator such as
fake-gcs-server. The client is synchronous: transfers run in worker threads, stream from disk,
and large files go up as chunked resumable uploads.
"""

from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kservehelper.storage.base import MULTIPART_THRESHOLD, StorageSettings
from kservehelper.storage.http_transport import content_type_of
from kservehelper.storage.objects import ObjectStoreDestination, Progress


def import_gcs() -> Any:
    """google.cloud.storage, or an error saying which extra installs it."""
    try:
        from google.cloud import storage
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gs:// needs google-cloud-storage: pip install 'kservehelper[gcs]' "
            "(or 'kservehelper[all]')"
        ) from None
    return storage


class GCSClient:
    """The :class:`~kservehelper.storage.objects.ObjectStore` of ``gs://``: one client.

    The client reports no progress within a file: ``progress`` is called once per file.
    """

    def __init__(self, settings: StorageSettings | None = None, signing_credentials: Any = None):
        self.settings = settings or StorageSettings.from_env()
        storage = import_gcs()
        self.endpoint = self.settings.gcs_endpoint_url or os.environ.get("STORAGE_EMULATOR_HOST")
        if self.settings.gcs_endpoint_url:
            from google.auth.credentials import AnonymousCredentials

            self.client = storage.Client(
                credentials=AnonymousCredentials(),
                project="kservehelper",
                client_options={"api_endpoint": self.settings.gcs_endpoint_url},
            )
        else:
            self.client = storage.Client()
        self.signing_credentials = signing_credentials

    def blob(self, bucket: str, key: str) -> Any:
        """A blob handle (no request made)."""
        return self.client.bucket(bucket).blob(key)

    def upload_file(
        self, path: Path, bucket: str, key: str, progress: Progress | None = None
    ) -> None:
        """Upload ``path`` to ``gs://bucket/key``; large files go as a chunked resumable upload."""
        blob = self.blob(bucket, key)
        size = path.stat().st_size
        if size >= MULTIPART_THRESHOLD:
            blob.chunk_size = MULTIPART_THRESHOLD  # a multiple of 256 KiB
        blob.upload_from_filename(
            str(path), content_type=content_type_of(key), timeout=self.settings.timeout
        )
        if progress is not None:
            progress(size)

    def size(self, bucket: str, key: str) -> int:
        """The object's size (raises ``FileNotFoundError`` if it does not exist)."""
        blob = self.client.bucket(bucket).get_blob(key)
        if blob is None:
            raise FileNotFoundError(f"gs://{bucket}/{key} does not exist")
        return int(blob.size or 0)

    def download_file(
        self, bucket: str, key: str, path: Path, progress: Progress | None = None
    ) -> None:
        """Download ``gs://bucket/key`` to ``path`` (streamed in chunks)."""
        blob = self.blob(bucket, key)
        blob.chunk_size = MULTIPART_THRESHOLD
        blob.download_to_filename(str(path), timeout=self.settings.timeout)
        if progress is not None:
            progress(path.stat().st_size)

    def list_keys(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object under ``prefix``."""
        for blob in self.client.list_blobs(bucket, prefix=prefix or None):
            yield blob.name, int(blob.size or 0)

    def signed_url(self, bucket: str, key: str, expiry: int, credentials: Any = None) -> str:
        """A V4 signed GET URL; against an unauthenticated emulator, its plain media URL.

        Signing needs a key: service-account credentials, or (on GCE/GKE) a token with the
        IAM ``signBlob`` permission. Without either the error says to use plain URIs.
        """
        credentials = credentials or self.signing_credentials or self.client._credentials
        from google.auth.credentials import AnonymousCredentials

        if isinstance(credentials, AnonymousCredentials) and self.endpoint:
            base = self.endpoint.rstrip("/")
            return f"{base}/download/storage/v1/b/{bucket}/o/{quote(key, safe='')}?alt=media"
        options: dict[str, Any] = {
            "version": "v4",
            "expiration": datetime.timedelta(seconds=expiry),
            "method": "GET",
            "credentials": credentials,
        }
        if self.endpoint:
            options["api_access_endpoint"] = self.endpoint
        if not hasattr(credentials, "sign_bytes"):
            # Compute Engine / workload identity: sign through the IAM API with a fresh token.
            import google.auth.transport.requests

            credentials.refresh(google.auth.transport.requests.Request())
            options["service_account_email"] = credentials.service_account_email
            options["access_token"] = credentials.token
        try:
            return str(self.blob(bucket, key).generate_signed_url(**options))
        except (AttributeError, TypeError) as error:
            raise RuntimeError(
                f"cannot sign a URL for gs://{bucket}/{key} with these credentials ({error}); "
                "use service-account credentials or set KSERVEHELPER_OBJECT_URLS=plain"
            ) from error

    def is_transient(self, error: BaseException) -> bool:
        return is_transient_gcs_error(error)


_clients: dict[StorageSettings, GCSClient] = {}
_clients_lock = threading.Lock()


def shared_gcs_client(settings: StorageSettings) -> GCSClient:
    """One :class:`GCSClient` per settings for the life of the process."""
    with _clients_lock:
        if settings not in _clients:
            _clients[settings] = GCSClient(settings)
        return _clients[settings]


def is_transient_gcs_error(error: BaseException) -> bool:
    """429, 5xx and connection failures, as google-api-core and requests report them."""
    import requests
    from google.api_core import exceptions

    if isinstance(error, (exceptions.TooManyRequests, exceptions.ServerError)):
        return True
    return isinstance(error, (requests.ConnectionError, requests.Timeout, ConnectionError))


class GCSDestination(ObjectStoreDestination):
    """``gs://bucket/prefix`` (see :class:`~kservehelper.storage.objects.ObjectStoreDestination`).

    ``signing_credentials`` sign the URLs instead of the client's own credentials.
    """

    scheme = "gs"

    def __init__(
        self,
        uri: str,
        settings: StorageSettings | None = None,
        *,
        signing_credentials: Any = None,
    ) -> None:
        super().__init__(uri, settings)
        self.signing_credentials = signing_credentials

    def url_of(self, key: str) -> str:
        if self.settings.object_urls == "plain" or self.signing_credentials is None:
            return super().url_of(key)
        client = shared_gcs_client(self.settings)
        return client.signed_url(
            self.bucket, key, self.settings.url_expiry, credentials=self.signing_credentials
        )
