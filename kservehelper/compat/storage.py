"""2.0's ``kservehelper.storage.S3Storage``, over today's S3 client (``storage/s3.py``).

New code copies files and folders with :func:`kservehelper.storage.transfer.upload` /
:func:`~kservehelper.storage.transfer.download` (S3 and GCS, progress bars).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kservehelper.compat import warn_deprecated
from kservehelper.storage.base import StorageSettings
from kservehelper.storage.s3 import S3Client, import_boto3

logger = logging.getLogger(__name__)


class S3Storage:
    """One S3 bucket, with 2.0's ``upload(filename, key)`` / ``download(key, filename)``.

    Both return ``True`` on success and ``False`` (after logging why) on failure, as in 2.0.
    Large files move in parts (multipart upload, parallel ranged download). An endpoint for
    S3-compatible stores comes from ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.

    Args:
        bucket: The bucket name.
        region_name: Its region (``None``: boto3's default).
        aws_access_key_id: With ``aws_secret_access_key``, explicit credentials; leave both
            empty to use boto3's standard chain (environment, config files, instance role).
        aws_secret_access_key: See ``aws_access_key_id``.
    """

    def __init__(
        self,
        bucket: str,
        region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
    ) -> None:
        warn_deprecated(
            "kservehelper.storage.S3Storage", "kservehelper.storage.transfer.upload/download"
        )
        if not bucket:
            raise ValueError("S3Storage needs a bucket name")
        boto3 = import_boto3()
        credentials: dict[str, Any] = {"region_name": region_name or None}
        if aws_access_key_id and aws_secret_access_key:
            credentials.update(
                aws_access_key_id=aws_access_key_id, aws_secret_access_key=aws_secret_access_key
            )
        self.bucket = bucket
        session = boto3.session.Session(**credentials)
        self.client = S3Client(StorageSettings.from_env(), session=session)

    def upload(self, filename: str | Path, key: str, **kwargs: Any) -> bool:
        """Upload the local file ``filename`` to ``key``; ``True`` on success.

        2.0's ``method="simple"|"multipart"`` is accepted and ignored: the transfer picks
        multipart by size.
        """
        try:
            self.client.upload_file(Path(filename), self.bucket, key)
        except Exception as error:
            logger.error("upload of %s to s3://%s/%s failed: %s", filename, self.bucket, key, error)
            return False
        return True

    def download(self, key: str, filename: str | Path, **kwargs: Any) -> bool:
        """Download ``key`` to the local file ``filename``; ``True`` on success.

        The file appears only when complete: a failed download leaves no partial file.
        """
        target = Path(filename)
        partial = target.with_name(f".{target.name}.partial")
        try:
            self.client.download_file(self.bucket, key, partial)
            partial.replace(target)
        except Exception as error:
            partial.unlink(missing_ok=True)
            logger.error("download of s3://%s/%s failed: %s", self.bucket, key, error)
            return False
        return True
