"""Keeping ``Secret`` values out of everything that leaves the server but the model's own output.

Two kinds of values are secret:

* **standing** ones, known for the life of the process: the defaults of a served model's
  ``Secret`` inputs and ``KSERVEHELPER_UPLOAD_TOKEN``;
* **request** ones: the ``Secret`` inputs a request sends, for as long as that request runs
  (:func:`request_secrets`).

Error bodies are scrubbed of the standing values and their own request's (:func:`scrub`);
log records, tracebacks included, of the standing values and every running request's
(:func:`install_log_scrubber`), whichever thread or task logs them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

MASK = "**********"

_standing: set[str] = set()
_running: Counter[str] = Counter()
_lock = threading.Lock()
_current: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "kservehelper_request_secrets", default=frozenset()
)


def add_standing(values: Iterable[Any]) -> None:
    """Scrub ``values`` (non-empty strings) from error bodies and logs for good."""
    with _lock:
        _standing.update(v for v in values if isinstance(v, str) and v)


@contextlib.contextmanager
def request_secrets(values: Iterable[str]) -> Iterator[None]:
    """Scrub a request's secret ``values`` while the block runs (a streaming response keeps
    the block open until its stream ends)."""
    found = frozenset(v for v in values if v)
    if not found:  # most requests: nothing to scrub, nothing to count
        yield
        return
    token = _current.set(found)
    with _lock:
        _running.update(found)
    try:
        yield
    finally:
        with _lock:
            _running.subtract(found)
            for value in found:
                if _running[value] <= 0:
                    del _running[value]
        with contextlib.suppress(ValueError):  # reset from another context: nothing to undo
            _current.reset(token)


def _ordered(values: Iterable[str]) -> list[str]:
    # Longest first, so a secret containing another is masked whole.
    return sorted(values, key=len, reverse=True)


def scrub(text: str, values: Iterable[str] | None = None) -> str:
    """``text`` with every secret value replaced by ``**********``.

    ``values`` default: the standing secrets and the current request's.
    """
    if values is None:
        with _lock:
            values = _standing | _current.get()
    for value in _ordered(values):
        if value in text:
            text = text.replace(value, MASK)
    return text


def scrub_json(body: Any) -> Any:
    """A JSON-able value with every string in it scrubbed (see :func:`scrub`)."""
    with _lock:
        values = _ordered(_standing | _current.get())
    if not values:
        return body
    return _scrub_value(body, values)


def scrub_bytes(data: bytes) -> bytes:
    """JSON-encoded ``data`` with the secrets (as JSON encodes them) masked (see :func:`scrub`)."""
    with _lock:
        values = _ordered(_standing | _current.get())
    for value in values:
        encoded = orjson.dumps(value)[1:-1]
        if encoded in data:
            data = data.replace(encoded, MASK.encode())
    return data


def _scrub_value(value: Any, values: list[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, values)
    if isinstance(value, dict):
        return {k: _scrub_value(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v, values) for v in value]
    return value


def _all_values() -> list[str]:
    with _lock:
        if not _standing and not _running:
            return []
        return _ordered(_standing | set(_running))


def scrub_record(record: logging.LogRecord) -> None:
    """Remove secrets from a log record's message, traceback and stack, in place."""
    values = _all_values()
    if not values:
        return
    try:
        message = record.getMessage()
    except Exception:  # a malformed log call: leave it to the handler to report
        return
    if any(value in message for value in values):
        record.msg, record.args = scrub(message, values), None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if any(value in text for value in values):
            record.exc_text = scrub(text, values)  # formatters use exc_text when it is set
    if record.stack_info and any(value in record.stack_info for value in values):
        record.stack_info = scrub(record.stack_info, values)


def _is_secret(field: Any) -> bool:
    return "Secret" in str(getattr(field, "type_name", ""))


def secret_defaults(fields: Iterable[Any]) -> list[str]:
    """The defaults of the ``Secret`` inputs among a model's ``fields`` (``InputField``)."""
    values: list[Any] = []
    for field in fields:
        if _is_secret(field):
            default = field.spec.default
            values.extend(default if isinstance(default, (list, tuple)) else [default])
    return [v for v in values if isinstance(v, str)]


def sent(fields: Iterable[Any], payload: Any) -> list[str]:
    """The ``Secret`` values a request's ``payload`` sends for ``fields``."""
    if not isinstance(payload, dict):
        return []
    values: list[Any] = []
    for field in fields:
        if _is_secret(field) and field.name in payload:
            value = payload[field.name]
            values.extend(value if isinstance(value, list) else [value])
    return [v for v in values if isinstance(v, str)]


def mask_docs(docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A model's ``/v1/docs`` entries with each ``Secret`` input's default masked."""
    for entry in docs.values():
        if "Secret" in str(entry.get("type", "")) and entry.get("default") is not None:
            entry["default"] = MASK
    return docs


_installed = False


def install_log_scrubber() -> None:
    """Scrub every log record made from now on in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub_record(record)
        return record

    logging.setLogRecordFactory(factory)
