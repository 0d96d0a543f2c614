"""Amazon S3 and S3-compatible stores (SeaweedFS, MinIO, R2, ...), through boto3.

Credentials and region come from boto3's standard chain (environment, shared config, instance
role); a custom endpoint from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` or
:attr:`StorageSettings.s3_endpoint_url`. boto3 is synchronous: transfers run in worker threads
and stream from disk, large files in parts (boto3's ``TransferConfig``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kservehelper.storage.base import MULTIPART_THRESHOLD, StorageSettings
from kservehelper.storage.http_transport import content_type_of
from kservehelper.storage.objects import ObjectStoreDestination, Progress

TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                   "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed"}  # fmt: skip


def import_boto3() -> Any:
    """boto3, or an error saying which extra installs it."""
    try:
        import boto3
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "s3:// needs boto3: pip install 'kservehelper[s3]' (or 'kservehelper[all]')"
        ) from None
    return boto3


class S3Client:
    """The :class:`~kservehelper.storage.objects.ObjectStore` of ``s3://``: one thread-safe
    boto3 client."""

    def __init__(self, settings: StorageSettings | None = None, session: Any = None) -> None:
        """``session``: a ``boto3.session.Session`` holding explicit credentials and region
        (default: a new session, boto3's standard chain)."""
        self.settings = settings or StorageSettings.from_env()
        boto3 = import_boto3()
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        pool = max(self.settings.concurrency, 1) * 4
        self.client = (session or boto3.session.Session()).client(
            "s3",
            endpoint_url=self.settings.s3_endpoint_url,
            config=Config(
                max_pool_connections=pool,
                signature_version="s3v4",
                retries={"max_attempts": 1},  # StorageSettings.attempts retries whole files
                read_timeout=min(self.settings.timeout, 300),
                connect_timeout=10,
            ),
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=8 * 1024 * 1024,  # boto3's default part size
            max_concurrency=10,
            use_threads=True,
        )

    def upload_file(
        self, path: Path, bucket: str, key: str, progress: Progress | None = None
    ) -> None:
        """Upload ``path`` to ``s3://bucket/key`` (multipart past the threshold)."""
        size = path.stat().st_size
        if size < MULTIPART_THRESHOLD:
            # One streamed PUT: no transfer-manager thread pool for a small file.
            with path.open("rb") as body:
                self.client.put_object(
                    Bucket=bucket, Key=key, Body=body, ContentType=content_type_of(key)
                )
            if progress is not None:
                progress(size)
            return
        self.client.upload_file(
            str(path),
            bucket,
            key,
            ExtraArgs={"ContentType": content_type_of(key)},
            Config=self.transfer_config,
            Callback=progress,
        )

    def size(self, bucket: str, key: str) -> int:
        """The object's size in bytes (raises ``FileNotFoundError`` if it does not exist)."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from None
            raise
        return int(head["ContentLength"])

    def download_file(
        self, bucket: str, key: str, path: Path, progress: Progress | None = None
    ) -> None:
        """Download ``s3://bucket/key`` to ``path`` (in parallel ranges past the threshold)."""
        self.client.download_file(bucket, key, str(path), Config=self.transfer_config,
                                  Callback=progress)  # fmt: skip

    def list_keys(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object under ``prefix``."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"], int(item["Size"])

    def signed_url(self, bucket: str, key: str, expiry: int) -> str:
        """A presigned HTTPS GET URL for the object."""
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=min(expiry, 7 * 24 * 3600),  # the SigV4 maximum
            )
        )

    def is_transient(self, error: BaseException) -> bool:
        return is_transient_s3_error(error)


_clients: dict[StorageSettings, S3Client] = {}
_clients_lock = threading.Lock()


def shared_s3_client(settings: StorageSettings) -> S3Client:
    """One :class:`S3Client` per settings for the life of the process (clients are costly)."""
    with _clients_lock:
        if settings not in _clients:
            _clients[settings] = S3Client(settings)
        return _clients[settings]


def is_transient_s3_error(error: BaseException) -> bool:
    """Connection failures, timeouts, throttling and 5xx, also when wrapped by boto3."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (ConnectionError, HTTPClientError)):
            return True
        if isinstance(seen, ClientError):
            status = int(seen.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            code = str(seen.response.get("Error", {}).get("Code", ""))
            return status == 429 or status >= 500 or code in TRANSIENT_CODES
        seen = seen.__cause__ or seen.__context__
    return False


class S3Destination(ObjectStoreDestination):
    """``s3://bucket/prefix``: see :class:`~kservehelper.storage.objects.ObjectStoreDestination`."""

    scheme = "s3"
