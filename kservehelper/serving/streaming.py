"""Streams: ``wrap_generator``, driving sync generators off the event loop, and framing.

Every item becomes one record ``{"id": i, "data": item}``, sent as a JSON line, or as a
server-sent event (``data: ...`` + blank line) when the client asks for ``text/event-stream``.
An exception mid-stream ends the stream with an error record, then a clean close.
"""

from __future__ import annotations

import asyncio
import contextvars
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

logger = logging.getLogger("kserve.kservehelper")

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


async def iterate_batches(stream: StreamOutput) -> AsyncIterator[list[Any]]:
    """A stream's items on the event loop, in batches of the items already produced.

    Sync iterables are driven in their own thread, so a slow ``next()`` never blocks the
    server (health checks keep answering). Batching never delays an item: a batch holds what
    the model produced while the previous batch was being sent.
    """
    source = stream.source
    if hasattr(source, "__aiter__"):
        async for item in source:
            yield [item]
        return
    async for batch in _iterate_in_thread(iter(source)):
        yield batch


async def _iterate_in_thread(iterator: Iterator[Any]) -> AsyncIterator[list[Any]]:
    loop = asyncio.get_running_loop()
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_BATCH)
    ready = asyncio.Event()
    stop = threading.Event()
    # Set while the consumer sleeps: the producer wakes the event loop only then, not for
    # every item (a cross-thread wake-up costs more than producing a small item).
    consumer_waiting = threading.Event()

    def put(kind: str, value: Any) -> None:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.1)
                break
            except queue.Full:
                continue
        if consumer_waiting.is_set():
            loop.call_soon_threadsafe(ready.set)

    def produce() -> None:
        try:
            for item in iterator:
                put("item", item)
                if stop.is_set():
                    break
            else:
                put("done", None)
        except BaseException as exc:  # delivered to the consumer, which ends the stream
            put("error", exc)
        finally:
            close = getattr(iterator, "close", None)
            if stop.is_set() and close is not None:
                close()

    # In the request's context: files the generator makes are the request's to clean up.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(produce,), name="kservehelper-stream", daemon=True
    )
    thread.start()
    try:
        while True:
            batch: list[Any] = []
            while len(batch) < _BATCH:
                try:
                    kind, value = items.get_nowait()
                except queue.Empty:
                    break
                if kind == "item":
                    batch.append(value)
                    continue
                if batch:
                    yield batch
                if kind == "error":
                    raise value
                return
            if batch:
                yield batch
                continue
            ready.clear()
            consumer_waiting.set()
            if items.empty():
                await ready.wait()
            consumer_waiting.clear()
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
    batches: AsyncIterator[list[Any]],
    sse: bool,
    on_close: Callable[[], None] | None = None,
    transform: Callable[[Any], Awaitable[Any]] | None = None,
) -> AsyncIterator[bytes]:
    """Frame a stream's items as records; end with an error record if the model raises.

    Each batch of items already produced goes out as one write.
    """
    index = 0
    try:
        async for batch in batches:
            chunk = []
            for item in batch:
                data = await transform(item) if transform is not None else item
                chunk.append(frame({"id": index, "data": data}, sse))
                index += 1
            yield b"".join(chunk)
    except Exception as exc:
        logger.exception("stream failed after %d items", index)
        error = {"type": type(exc).__name__, "message": str(exc)}
        yield frame({"id": index, "error": error}, sse, event="error")
    finally:
        if on_close is not None:
            on_close()
