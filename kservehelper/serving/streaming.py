"""Streams: ``wrap_generator``, driving generators from the event loop, framing, the response.

Every item becomes one record ``{"id": i, "data": item}``, sent as a JSON line, or as a
server-sent event (``data: ...`` + blank line) when the client asks for ``text/event-stream``.
An exception mid-stream ends the stream with an error record, then a clean close. A stream
whose client leaves stops after the item its generator is producing.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from typing import Any, Protocol

import orjson
from starlette.responses import StreamingResponse

from kservehelper.errors import KServeHelperError
from kservehelper.serving.threads import UserCodeThreads, user_code_threads

logger = logging.getLogger("kserve.kservehelper")

JSON_LINES = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
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


class StopSignal(Protocol):
    """What tells a stream's producing thread to stop (a ``threading.Event``, a request's
    cancellation)."""

    def is_set(self) -> bool: ...


class ItemSource:
    """A stream's items on the event loop, in batches of the items already produced.

    Sync iterables are driven in a thread of their own, so a slow ``next()`` never blocks the
    server (health checks keep answering). Batching never delays an item: a batch holds what
    the model produced while the previous batch was being sent.

    :meth:`aclose` stops the generator after the item it is producing (its ``finally`` runs)
    and, with ``wait``, returns only once it has stopped. ``stop`` is also watched by the
    producing thread, so setting it (the request's cancellation flag) stops the generator
    even while the consumer is not asking for items.
    """

    def __init__(
        self,
        stream: StreamOutput,
        stop: StopSignal | None = None,
        threads: UserCodeThreads | None = None,
    ) -> None:
        self._source = stream.source
        self._stop = stop
        self._stopped = threading.Event()  # set by aclose()
        self._threads = threads or user_code_threads()
        self._items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_BATCH)
        self._ready = asyncio.Event()
        # Set while the consumer sleeps: the producer wakes the event loop only then, not for
        # every item (a cross-thread wake-up costs more than producing a small item).
        self._consumer_waiting = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The producing thread's job: done once the generator has stopped.
        self.producer: asyncio.Future[None] | None = None

    async def batches(self) -> AsyncIterator[list[Any]]:
        source = self._source
        if hasattr(source, "__aiter__"):
            async for item in source:
                yield [item]
            return
        self._loop = asyncio.get_running_loop()
        self.producer = self._threads.submit(self._produce, iter(source))
        while True:
            batch: list[Any] = []
            while len(batch) < _BATCH:
                try:
                    kind, value = self._items.get_nowait()
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
            if self._stopping():
                return  # stopped: nothing more is sent (the producer ends after its item)
            self._ready.clear()
            self._consumer_waiting.set()
            try:
                if self._items.empty() and not self._stopping():
                    await self._ready.wait()
            finally:
                self._consumer_waiting.clear()

    def _stopping(self) -> bool:
        return self._stopped.is_set() or (self._stop is not None and self._stop.is_set())

    def wake(self) -> None:
        """Wake a consumer waiting for items (from the event loop's thread), e.g. once
        ``stop`` is set."""
        self._ready.set()

    def _put(self, kind: str, value: Any) -> bool:
        """Hand one record to the consumer; False if the stream was stopped meanwhile."""
        while not self._stopping():
            try:
                self._items.put((kind, value), timeout=0.1)
            except queue.Full:
                continue
            if self._consumer_waiting.is_set() and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody reads
                    self._loop.call_soon_threadsafe(self._ready.set)
            return True
        return False

    def _produce(self, iterator: Iterator[Any]) -> None:
        try:
            for item in iterator:
                if not self._put("item", item) or self._stopping():
                    break
            else:
                self._put("done", None)
        except Exception as exc:  # delivered to the consumer, which ends the stream
            self._put("error", exc)
        except BaseException as exc:  # SystemExit in a generator must not stop the server
            self._put("error", RuntimeError(f"the stream's generator raised {exc!r}"))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator stopped early runs its finally here, in its thread

    async def aclose(self, wait: bool = True) -> None:
        """Stop the generator; with ``wait``, until it has stopped (its ``finally`` ran)."""
        self._stopped.set()
        while not self._items.empty():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                self._items.get_nowait()
        close = getattr(self._source, "aclose", None)
        if close is not None:
            await close()
        if wait and self.producer is not None and not self.producer.done():
            await asyncio.shield(self.producer)


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
    stream: ModelStream, sse: bool, scrub_error: Callable[[bytes], bytes] | None = None
) -> AsyncIterator[bytes]:
    """Frame a stream's items as records; end with an error record if the stream fails
    (passed through ``scrub_error``, which removes the request's secrets, if given).

    Each batch of items already produced goes out as one write. Once the items end, the
    stream is closed before the response is: a client that has the whole answer knows the
    request's files are gone.
    """
    index = 0
    try:
        async for batch in stream.batches:
            chunk = []
            for item in batch:
                chunk.append(frame({"id": index, "data": item}, sse))
                index += 1
            yield b"".join(chunk)
    except Exception as exc:
        if isinstance(exc, KServeHelperError):  # cancelled, a delivery failed, ...
            logger.warning("stream ended after %d items: %s", index, exc)
        else:
            logger.exception("stream failed after %d items", index)
        error = {"type": type(exc).__name__, "message": str(exc)}
        await stream.aclose()
        record = frame({"id": index, "error": error}, sse, event="error")
        yield scrub_error(record) if scrub_error is not None else record
        return
    await stream.aclose()


class ModelStream:
    """A streaming answer: batches of items ready to send, and how to end the request.

    Whoever consumes it must call :meth:`aclose` when done, also when the client left
    mid-way: that stops the generator and releases what the request holds (its slot, its
    files). :func:`stream_response` does it for HTTP.
    """

    def __init__(
        self,
        batches: AsyncIterator[list[Any]],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.batches = batches
        self._close = close
        self._closing: asyncio.Future[None] | None = None

    async def items(self) -> AsyncIterator[Any]:
        """The items one by one (for local predict)."""
        async for batch in self.batches:
            for item in batch:
                yield item

    async def aclose(self) -> None:
        """Close once; a caller cancelled meanwhile does not interrupt the closing (which
        releases the slot), and every caller waits for the same closing."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close_once())
        await asyncio.shield(self._closing)

    async def _close_once(self) -> None:
        close_batches = getattr(self.batches, "aclose", None)
        if close_batches is not None:
            with contextlib.suppress(RuntimeError):  # still running: it is being cancelled
                await close_batches()
        await self._close()


class _ModelStreamResponse(StreamingResponse):
    """A ``StreamingResponse`` that always closes its model stream, whatever happened.

    Starlette cancels the sending task when the client disconnects, which can leave the body
    iterator suspended and never closed: the generator would run on, holding its slot.
    """

    def __init__(
        self,
        stream: ModelStream,
        sse: bool,
        scrub_error: Callable[[bytes], bytes] | None,
        on_close: Callable[[], None] | None,
    ) -> None:
        super().__init__(
            encode_stream(stream, sse, scrub_error),
            media_type=EVENT_STREAM if sse else JSON_LINES,
            headers=STREAM_HEADERS,
        )
        self.stream = stream
        self.on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            body = self.body_iterator
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(RuntimeError):  # still running: it is being cancelled
                    await aclose()
            try:
                await self.stream.aclose()
            finally:
                if self.on_close is not None:
                    self.on_close()  # in the request's task: it may reset context variables


def stream_response(
    stream: ModelStream,
    sse: bool,
    scrub_error: Callable[[bytes], bytes] | None = None,
    on_close: Callable[[], None] | None = None,
) -> StreamingResponse:
    """The HTTP response streaming ``stream`` as JSON lines, or server-sent events.

    ``scrub_error`` filters the error record a failing stream ends with; ``on_close`` runs
    once the stream is closed, whatever happened (also when the response never started).
    """
    return _ModelStreamResponse(stream, sse, scrub_error, on_close)
