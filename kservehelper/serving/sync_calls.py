"""Sync calls of the model's code that wait for their slot in the queue as they are.

A request to a sync method with nothing to download before it runs does not wait for a slot on
the event loop and then hand its call to a thread: its call joins the admission queue itself
(:meth:`Admission.enqueue`). A thread that finishes a call gives its slot to the next queued
call and runs it at once; the event loop only learns of results, several per wake-up (see
:class:`~kservehelper.serving.threads.Inbox`). That takes two of the three cross-thread
wake-ups of a queued sync request off its path.

A queued call whose request is abandoned (client gone, shutdown) before a thread took it
never runs; one already running sees ``KServeModel.cancelled()`` turn true and its result is
discarded, as on the ordinary path.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from typing import Any

from kservehelper.serving.admission import Admission, QueuedCall
from kservehelper.serving.cancellation import Cancellation
from kservehelper.serving.streaming import is_stream
from kservehelper.serving.threads import UserCodeThreads, inbox_for, settle, user_code_threads


class SyncCall:
    """One call of a sync method: queued for a slot, then run holding it.

    ``future`` is settled on the event loop with the call's result. A result that is a
    stream keeps the slot (``holds_slot`` stays true) until the request's stream is closed;
    any other outcome gives it back as the call returns.
    """

    __slots__ = (
        "_admission",
        "_call",
        "_context",
        "_inbox",
        "_queued_at",
        "_stop",
        "_threads",
        "future",
        "holds_slot",
        "started_at",
    )

    def __init__(
        self,
        admission: Admission,
        stop: Cancellation,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        threads: UserCodeThreads | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._admission = admission
        self._stop = stop
        self._call = functools.partial(function, *args, **kwargs)
        self._context = contextvars.copy_context()
        self._inbox = inbox_for(loop)
        self._threads = threads or user_code_threads()
        self._queued_at = 0.0
        self.future: asyncio.Future[Any] = loop.create_future()
        self.holds_slot = False
        #: When a thread took the call (0 while it is queued).
        self.started_at = 0.0

    def start(self) -> None:
        """Queue for a slot (or take a free one and start soon)."""
        self._queued_at = time.perf_counter()
        if self._admission.enqueue(self):
            # Not at once: after the callbacks already due in this turn of the event loop,
            # which are often other requests' that queue behind this one, so that one
            # thread wake-up runs them all.
            self.future.get_loop().call_soon(self.dispatch)

    def withdraw(self) -> bool:
        """Leave the queue before a slot was given (the call will never run)."""
        if self._admission.withdraw(self):
            self.future.cancel()
            return True
        return False

    def dispatch(self) -> None:
        """Run in a pool thread, holding a slot (called by the admission)."""
        self.holds_slot = True
        self._threads.start(self._run_queue)

    def _run_queue(self) -> None:
        call: QueuedCall | None = self
        while call is not None:
            call = call.run_holding_slot()

    def run_holding_slot(self) -> QueuedCall | None:
        """Run the call holding its slot; returns the next queued call, now holding it."""
        self.holds_slot = True
        self.started_at = started = time.perf_counter()
        self._admission.observe_wait(started - self._queued_at)
        if self._stop.is_set():  # abandoned while queued: never runs
            self.holds_slot = False
            following = self._admission.release(None, in_thread=True)
            self._inbox.post(self.future.cancel)
            return following
        result: Any = None
        error: BaseException | None = None
        try:
            result = self._context.run(self._call)
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        following = None
        if error is None and is_stream(result):
            pass  # the stream holds the slot until it is closed (Request.release_slot)
        else:
            self.holds_slot = False
            following = self._admission.release(time.perf_counter() - started, in_thread=True)
        self._inbox.post(functools.partial(settle, self.future, result, error))
        return following
