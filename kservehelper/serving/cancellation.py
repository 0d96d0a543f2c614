"""Dropping abandoned work: why a request was stopped, and the parts of it that stop at once.

A request is cancelled when its client disconnects (:class:`ClientDisconnected`) or when the
server's shutdown grace period runs out (:class:`ShuttingDown`). What that does depends on
what the request is doing:

* waiting for a slot, downloading an input, running an ``async`` method, delivering files:
  these run inside :meth:`Cancellation.section`, whose task is cancelled at once; the
  section ends with the reason (an exception the HTTP layer answers);
* running a sync method in a thread: nothing can stop a thread, so the flag the model can
  check, ``KServeModel.cancelled()``, turns true, and the result is discarded;
* streaming: the generator is stopped after the item it is producing.

The client's disconnect is noticed by :meth:`Cancellation.watch_client`, which waits on the
ASGI ``receive`` channel of the request (an ``http.disconnect`` message) that the HTTP layer
hands over with :func:`serving_client`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Protocol

from kservehelper.errors import ClientDisconnected, KServeHelperError

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

WATCH_AFTER = 0.02
"""Seconds into a request before its client's connection is watched."""

_CURRENT: ContextVar[Cancellation | None] = ContextVar("kservehelper_cancellation", default=None)
_CLIENT: ContextVar[Receive | None] = ContextVar("kservehelper_client", default=None)


def serving_client(receive: Receive) -> None:
    """Tell the request about to run in this context how to notice its client leaving.

    ``receive`` is the request's ASGI receive channel, after its body has been read.
    """
    _CLIENT.set(receive)


def current_client() -> Receive | None:
    """The ASGI receive channel given by :func:`serving_client` in this context, if any."""
    return _CLIENT.get()


def current() -> Cancellation | None:
    """The cancellation of the request running in this context (also in its threads)."""
    return _CURRENT.get()


class Flag(Protocol):
    """What ``KServeModel.cancelled()`` reads: a reason, set once the work is abandoned."""

    @property
    def reason(self) -> KServeHelperError | None: ...


def set_current(flag: Flag) -> None:
    """Make ``flag`` what ``KServeModel.cancelled()`` reads in this context (a batched call
    stands for several requests)."""
    _CURRENT.set(flag)  # type: ignore[arg-type]


def is_cancelled() -> bool:
    """Whether the request running in this context was abandoned (``KServeModel.cancelled()``)."""
    cancellation = _CURRENT.get()
    return cancellation is not None and cancellation.reason is not None


class Cancellation:
    """Whether, and why, one request was abandoned."""

    # Made for every request: kept light (no locks, no lists until needed). Threads (the
    # model's sync code, stream producers) only read ``reason``, which is set once.
    __slots__ = (
        "_finished",
        "_interrupted",
        "_listeners",
        "_task",
        "_watcher",
        "interrupts",
        "reason",
    )

    def __init__(self) -> None:
        self.reason: KServeHelperError | None = None
        self._task: asyncio.Task[Any] | None = None
        self._interrupted: asyncio.Task[Any] | None = None
        self._listeners: list[Callable[[KServeHelperError], None]] | None = None
        #: Whether a reason cancels the task in a section (a stream leaves a client's
        #: disconnect to the HTTP server, which cancels the sending task itself).
        self.interrupts: Callable[[KServeHelperError], bool] | None = None
        self._watcher: asyncio.Task[None] | asyncio.TimerHandle | None = None
        self._finished = False

    def is_set(self) -> bool:
        """Whether the request was cancelled (``threading.Event``'s spelling, for threads)."""
        return self.reason is not None

    def activate(self) -> None:
        """Make this the current request's cancellation (for ``KServeModel.cancelled()``)."""
        _CURRENT.set(self)

    def on_cancel(self, listener: Callable[[KServeHelperError], None]) -> None:
        """Call ``listener(reason)`` when the request is cancelled."""
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(listener)

    def cancel(self, reason: KServeHelperError) -> None:
        """Abandon the request: the first reason wins; later calls do nothing."""
        if self.reason is not None or self._finished:
            return
        self.reason = reason
        for listener in self._listeners or ():
            listener(reason)
        interrupts = self.interrupts is None or self.interrupts(reason)
        if self._task is not None and interrupts:
            self._interrupted = self._task
            self._task.cancel()

    def check(self) -> None:
        """Raise the reason if the request was cancelled."""
        if self.reason is not None:
            raise self.reason

    def section(self) -> _Section:
        """``async with cancellation.section():`` work that stops at once when cancelled."""
        return _Section(self)

    def watch_client(self, receive: Receive) -> None:
        """Cancel with :class:`ClientDisconnected` when ``receive`` reports a disconnect.

        Watching starts after :data:`WATCH_AFTER` seconds: most requests are answered
        sooner, and then no watching task is made at all. A disconnect that happened before
        is still seen (the server keeps reporting it).
        """

        async def watch() -> None:
            while True:
                message = await receive()
                if message.get("type") == "http.disconnect":
                    self.cancel(ClientDisconnected("the client closed the connection"))
                    return

        def start() -> None:
            if not self._finished:
                self._watcher = loop.create_task(watch())

        loop = asyncio.get_running_loop()
        self._watcher = loop.call_later(WATCH_AFTER, start)

    def finish(self) -> None:
        """The request is answered (or given up): stop watching, ignore later disconnects."""
        self._finished = True
        self._listeners = None  # they refer back to the request: let it be freed at once
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None


class _Section:
    """Cancels its task on :meth:`Cancellation.cancel` and raises the reason instead."""

    __slots__ = ("_cancellation", "_previous", "_task")

    def __init__(self, cancellation: Cancellation) -> None:
        self._cancellation = cancellation
        self._previous: asyncio.Task[Any] | None = None
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> None:
        self._cancellation.check()
        self._task = asyncio.current_task()
        self._previous = self._cancellation._task
        self._cancellation._task = self._task

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        cancellation = self._cancellation
        cancellation._task = self._previous
        if exc_type is asyncio.CancelledError and cancellation._interrupted is self._task:
            # Our cancel, not someone else's: the task goes on (Python 3.11+ counts cancels).
            cancellation._interrupted = None
            uncancel = getattr(self._task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            assert cancellation.reason is not None
            raise cancellation.reason from None
