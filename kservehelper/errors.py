"""One exception type per failure family, each carrying a message a user can act on.

Each class carries the HTTP status it is answered with (``http_status``), so the server's error
responses (``serving/http.py``) are a lookup (:func:`http_status_of`); the command line prints
``str(error)`` and exits non-zero.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: Statuses of exceptions kservehelper does not define: a model raising ``ValueError`` is the
#: model saying the input is wrong.
FOREIGN_STATUSES: dict[type[BaseException], int] = {ValueError: 400}


class KServeHelperError(Exception):
    """Base class of every error kservehelper raises on purpose."""

    #: The HTTP status a request failing with this error is answered with.
    http_status: ClassVar[int] = 500

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the HTTP error response."""
        return {"error": str(self)}

    def response_headers(self) -> dict[str, str]:
        """Headers of the HTTP error response (``Retry-After`` for a 503)."""
        return {}


class SignatureError(KServeHelperError):
    """A model class cannot be served as written (bad annotation, bad default, ...).

    Raised when the model is loaded, never on a request.
    """


class InputError(KServeHelperError):
    """A request's inputs are invalid: answered with HTTP 400.

    ``detail`` follows pydantic's shape: ``[{"loc": [field, ...], "msg": str, "type": str}]``.
    """

    http_status = 400

    def __init__(self, summary: str, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.detail = detail or []

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.summary, "detail": self.detail}

    def __str__(self) -> str:
        lines = [self.summary]
        for item in self.detail:
            loc = ".".join(str(part) for part in item.get("loc", ())) or "request"
            lines.append(f"  - {loc}: {item.get('msg', '')}")
        return "\n".join(lines) if len(self.detail) > 1 else self.summary


class UploadError(KServeHelperError):
    """An output file could not be delivered to its destination: answered with HTTP 502."""

    http_status = 502

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "type": type(self).__name__}


class RequestTooLarge(KServeHelperError):
    """The request body is larger than ``KSERVEHELPER_MAX_REQUEST_BYTES``: HTTP 413."""

    http_status = 413


class RequestTimeout(KServeHelperError):
    """The client stopped sending its request (``KSERVEHELPER_BODY_TIMEOUT``): HTTP 408."""

    http_status = 408


class HeadersTooLarge(KServeHelperError):
    """The request line and headers pass ``KSERVEHELPER_MAX_HEADER_BYTES``: HTTP 431."""

    http_status = 431


class CrossOriginRefused(KServeHelperError):
    """A browser page of another origin sent the request: HTTP 403."""

    http_status = 403


class NotFound(KServeHelperError):
    """No such route, or no such model on this server: HTTP 404."""

    http_status = 404


class MethodNotAllowed(KServeHelperError):
    """The route exists but not with this HTTP method: HTTP 405 (``allow``: the methods it
    takes, for the ``Allow`` header)."""

    http_status = 405

    def __init__(self, message: str, allow: str = "") -> None:
        super().__init__(message)
        self.allow = allow

    def response_headers(self) -> dict[str, str]:
        return {"Allow": self.allow} if self.allow else {}


class NotReady(KServeHelperError):
    """The model is not loaded (yet, or any more): HTTP 503."""

    http_status = 503


class ConfigError(KServeHelperError):
    """config.yaml is invalid; the message names the file, the key and a fix."""


class BuildError(KServeHelperError):
    """Building, pushing or running an image failed."""


class ModelError(KServeHelperError):
    """The model's own code failed outside a request: importing its file, or its ``load()``.

    The message names the file and line in the model's code where it happened.
    """


class ServeError(KServeHelperError):
    """The model server cannot start as asked (its port is taken, a flag is unknown, ...)."""


def http_status_of(error: BaseException) -> int:
    """The HTTP status a request failing with ``error`` is answered with (500 if unknown)."""
    status = getattr(error, "http_status", None)
    if isinstance(status, int):
        return status
    for kind in type(error).__mro__:
        if kind in FOREIGN_STATUSES:
            return FOREIGN_STATUSES[kind]
    return 500


class Unavailable(KServeHelperError):
    """The server cannot take the request now: HTTP 503 with ``Retry-After`` (seconds)."""

    http_status = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "type": type(self).__name__, "retry_after": self.retry_after}

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServerBusy(Unavailable):
    """Every slot is busy and the admission queue is full (``KSERVEHELPER_MAX_QUEUE``)."""


class ShuttingDown(Unavailable):
    """The server is draining after SIGTERM: it finishes what it has and takes nothing new."""


class ClientDisconnected(KServeHelperError):
    """The client closed the connection before the answer: its work is dropped.

    Nobody reads the response; 499 (nginx's "client closed request") marks it in logs.
    """

    http_status = 499


class DeadlineExceeded(KServeHelperError):
    """Part of a request took longer than its deadline allows: HTTP 504."""

    http_status = 504

    def to_dict(self) -> dict[str, Any]:
        return {"error": str(self), "type": type(self).__name__}
