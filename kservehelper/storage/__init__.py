"""Where output files go and where input files come from: webhooks, S3, GCS, local.

``kservehelper.storage.S3Storage`` is kservehelper 2.0's class, kept as an adapter
(:mod:`kservehelper.compat.storage`); new code uses :mod:`kservehelper.storage.transfer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kservehelper.compat.storage import S3Storage

__all__ = ["S3Storage"]


def __getattr__(name: str) -> Any:
    # Resolved on use: importing kservehelper.storage must not import boto3.
    if name == "S3Storage":
        from kservehelper.compat.storage import S3Storage

        return S3Storage
    raise AttributeError(f"module 'kservehelper.storage' has no attribute {name!r}")
