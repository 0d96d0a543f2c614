"""Which code handles which URL scheme: destinations (outputs), sources (inputs), object stores.

Adding a scheme is one backend module plus one line in each table that applies. Backends are
imported on first use, so ``boto3`` or ``google-cloud-storage`` load only when a URI needs them.
:func:`resolve` is also where a request's destination meets the outbound policy.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kservehelper.errors import InputError
from kservehelper.settings import env_name
from kservehelper.storage import policy
from kservehelper.storage.base import Destination, StorageSettings, redact
from kservehelper.storage.urls import allow_list

if TYPE_CHECKING:
    from kservehelper.storage.objects import ObjectStore

#: scheme → "module:class" of its :class:`Destination` (``http(s)`` picks webhook or PUT by path).
DESTINATIONS = {
    "http": "kservehelper.storage.put:PutDestination",
    "https": "kservehelper.storage.put:PutDestination",
    "s3": "kservehelper.storage.s3:S3Destination",
    "gs": "kservehelper.storage.gcs:GCSDestination",
    "file": "kservehelper.storage.local:LocalDestination",
    "": "kservehelper.storage.local:LocalDestination",
}
WEBHOOK = "kservehelper.storage.webhook:WebhookDestination"

#: scheme → "module:function" returning the shared :class:`ObjectStore` for some settings.
OBJECT_STORES = {
    "s3": "kservehelper.storage.s3:shared_s3_client",
    "gs": "kservehelper.storage.gcs:shared_gcs_client",
}

#: scheme → "module:function" downloading an input (see :mod:`kservehelper.storage.fetch`).
SOURCES = {
    "http": "kservehelper.storage.fetch:fetch_http",
    "https": "kservehelper.storage.fetch:fetch_http",
    "s3": "kservehelper.storage.fetch:fetch_object",
    "gs": "kservehelper.storage.fetch:fetch_object",
}

Source = Callable[..., Awaitable[None]]
"""``await source(uri, target, field=, limit=, settings=, allowed=)`` downloads one input."""


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def object_store(scheme: str, settings: StorageSettings | None = None) -> ObjectStore:
    """The shared object store for ``s3`` / ``gs`` (``ImportError`` names the missing extra)."""
    if scheme not in OBJECT_STORES:
        raise ValueError(f"{scheme!r} is not an object store scheme ({', '.join(OBJECT_STORES)})")
    store: ObjectStore = _load(OBJECT_STORES[scheme])(settings or StorageSettings.from_env())
    return store


def source(scheme: str) -> Source | None:
    """The download function for inputs of ``scheme``, or ``None`` if inputs cannot use it."""
    reference = SOURCES.get(scheme)
    return _load(reference) if reference else None


def is_webhook(uri: str) -> bool:
    """Whether an ``http(s)`` destination speaks the webhook protocol (``.../upload[_batch]``)."""
    path = urlsplit(uri).path.rstrip("/")
    return path.endswith("/upload") or path.endswith("/upload_batch")


def resolve(
    uri: str,
    settings: StorageSettings | None = None,
    *,
    field_name: str = "upload_webhook",
    trusted: bool | None = None,
) -> Destination:
    """The destination a URI names, after the outbound policy.

    ``http(s)://.../upload`` and ``.../upload_batch`` are webhooks, other ``http(s)`` URLs take
    ``PUT``, ``s3://`` and ``gs://`` are object stores, ``file://`` URLs and absolute paths are
    local folders.

    ``trusted``: whether ``uri`` is the operator's (default: whether it is the destination
    checked at start-up, :func:`~kservehelper.storage.policy.trust_operator_destination`). An
    untrusted URI must pass the destination allow-list, may not be a local folder, and its
    connections go through the address check. Raises :class:`InputError` (HTTP 400) naming
    ``field_name``.
    """
    settings = settings or StorageSettings.from_env()
    uri = uri.strip()
    if trusted is None:
        trusted = policy.is_trusted_destination(uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in DESTINATIONS or (not scheme and not uri.startswith("/")):
        raise _unknown_destination(uri, field_name)
    rule: policy.ConnectRule | None = None
    if not trusted:
        if scheme in ("", "file"):
            raise _destination_error(
                field_name,
                "a local folder is not accepted from a request; send an http(s) webhook URL, "
                "s3://bucket/prefix or gs://bucket/prefix",
                "local_destination_refused",
            )
        allowed = allow_list(
            settings.allowed, env_name("allowed_destinations"), "destination_not_allowed"
        )
        policy.check_request_url(uri, allowed, field=field_name)
        rule = policy.ConnectRule.for_list(allowed)
    reference = WEBHOOK if scheme in ("http", "https") and is_webhook(uri) else DESTINATIONS[scheme]
    destination_class = _load(reference)
    if scheme in ("http", "https"):
        send_token = trusted or policy.token_allowed(uri, settings.token_origins)
        destination: Destination = destination_class(
            uri, settings, rule=rule, send_token=send_token
        )
    else:
        destination = destination_class(uri, settings)
    destination.field_name = field_name
    return destination


def _destination_error(field: str, message: str, kind: str) -> InputError:
    return InputError(
        f"invalid input {field!r}: {message}", [{"loc": [field], "msg": message, "type": kind}]
    )


def _unknown_destination(uri: str, field: str) -> InputError:
    return InputError(
        f"cannot upload to {redact(uri)!r}: unknown destination",
        detail=[
            {
                "loc": [field],
                "msg": "expected an http(s) webhook URL, s3://bucket/prefix, gs://bucket/prefix "
                "or a local folder",
                "type": "destination_scheme",
            }
        ],
    )
