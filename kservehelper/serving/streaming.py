"""Streams: ``wrap_generator``, driving sync generators off the event loop, and framing.

Every item becomes one record ``{"id": i, "data": item}``, sent as a JSON line, or as a
server-sent event (``data: ...`` + blank line) when the client asks for ``text/event-stream``.
An exception mid-stream ends the stream with an error record, then a clean close.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import Any

import orjson

logger = logging.getLogger("kservehelper")

JSON_LINES = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"
_BATCH = 64  # items the producer thread may run ahead of the client


class StreamOutput:
    """A model's streaming output: wraps a (sync or async) iterable, or a callable making one."""

    def __init__(self, source: Any) -> None:
        if callable(source) and not _is_iterable(source):
            source = source()
        if not _is_iterable(source):
            raise TypeError(
                "wrap_generator() needs a generator function, a generator or an iterable; "
                f"got {type(source).__name__}"
            )
        self.source: Iterable[Any] | AsyncIterable[Any] = source


def _is_iterable(value: Any) -> bool:
    if isinstance(value, (str, bytes, dict)):
        return False
    return hasattr(value, "__iter__") or hasattr(value, "__aiter__")


def wrap_generator(source: Any) -> StreamOutput:
    """Mark ``source`` (a generator function, a generator, or an async generator) as a stream.

    Kept from the seed API: ``return KServeModel.wrap_generator(_generator)``. Returning a
    generator directly from ``predict`` streams too.
    """
    return StreamOutput(source)


def is_stream(value: Any) -> bool:
    """Whether a method's return value should be streamed."""
    return (
        isinstance(value, StreamOutput) or inspect.isgenerator(value) or inspect.isasyncgen(value)
    )


def as_stream(value: Any) -> StreamOutput:
    return value if isinstance(value, StreamOutput) else StreamOutput(value)


async def iterate(stream: StreamOutput) -> AsyncIterator[Any]:
    """Items of a stream, on the event loop. Sync iterables are driven in their own thread,
    so a slow ``next()`` never blocks the server (health checks keep answering)."""
    source = stream.source
    if hasattr(source, "__aiter__"):
        async for item in source:
            yield item
        return
    async for item in _iterate_in_thread(iter(source)):
        yield item


_DONE = object()


async def _iterate_in_thread(iterator: Iterator[Any]) -> AsyncIterator[Any]:
    loop = asyncio.get_running_loop()
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_BATCH)
    ready = asyncio.Event()
    stop = threading.Event()

    def notify() -> None:
        loop.call_soon_threadsafe(ready.set)

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                notify()
                if stop.is_set():
                    break
            else:
                items.put(("done", _DONE))
        except BaseException as exc:  # delivered to the consumer, which ends the stream
            items.put(("error", exc))
        finally:
            close = getattr(iterator, "close", None)
            if stop.is_set() and close is not None:
                close()
            notify()

    thread = threading.Thread(target=produce, name="kservehelper-stream", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = items.get_nowait()
            except queue.Empty:
                ready.clear()
                if items.empty():
                    await ready.wait()
                continue
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue.
        while not items.empty():
            items.get_nowait()


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """JSON-encode a model output (pydantic models, numpy arrays and paths included)."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def frame(record: dict[str, Any], sse: bool, event: str | None = None) -> bytes:
    body = dumps(record)
    if not sse:
        return body + b"\n"
    prefix = f"event: {event}\n".encode() if event else b""
    return prefix + b"data: " + body + b"\n\n"


async def encode_stream(
    items: AsyncIterator[Any],
    sse: bool,
    on_close: Callable[[], None] | None = None,
    transform: Callable[[Any], Awaitable[Any]] | None = None,
) -> AsyncIterator[bytes]:
    """Frame a stream's items as records; end with an error record if the model raises."""
    index = 0
    try:
        async for item in items:
            data = await transform(item) if transform is not None else item
            yield frame({"id": index, "data": data}, sse)
            index += 1
    except Exception as exc:
        logger.exception("stream failed after %d items", index)
        error = {"type": type(exc).__name__, "message": str(exc)}
        yield frame({"id": index, "error": error}, sse, event="error")
    finally:
        if on_close is not None:
            on_close()
