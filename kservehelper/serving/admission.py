"""Slots and the admission queue of one served model.

``max_concurrency`` slots: a request runs the model's code only while it holds one. When all
are taken, up to ``max_queue`` requests wait for one, first come first served; a request that
finds the queue full is refused at once (:class:`~kservehelper.errors.ServerBusy`, HTTP 503)
with a ``Retry-After`` estimated from how long recent requests held their slot.

Nothing here is bound to an event loop until a request waits (each waiter is a future of its
own loop), so a model can be called from successive ``asyncio.run()`` calls.

A waiter is either a request on the event loop (:meth:`Admission.acquire`) or a sync call of
the model's code queued as it is (:meth:`Admission.enqueue`, a
:class:`~kservehelper.serving.sync_calls.SyncCall`). A slot freed by a thread that just ran the
model's code goes straight to the next queued call, in that same thread: a busy sync model
runs call after call without a round trip through the event loop. The state is guarded by a
lock, since slots are released from those threads too.

Queue length, slots in use, waits and refusals are Prometheus metrics on KServe's
``/metrics`` endpoint.
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
from typing import Protocol, Union

from prometheus_client import Counter, Gauge, Histogram

from kservehelper.errors import ServerBusy, ShuttingDown
from kservehelper.settings import env_name

QUEUE_LENGTH = Gauge(
    "kservehelper_queue_length", "Requests waiting for a slot to run the model.", ["model"]
)
SLOTS_IN_USE = Gauge(
    "kservehelper_slots_in_use", "Requests holding a slot (running the model's code).", ["model"]
)
QUEUE_WAIT = Histogram(
    "kservehelper_queue_wait_seconds",
    "Time requests waited for a slot.",
    ["model"],
    buckets=(0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
REJECTED = Counter(
    "kservehelper_rejected_requests",
    "Requests refused with 503 (reason: queue_full or shutting_down).",
    ["model", "reason"],
)
ABANDONED = Counter(
    "kservehelper_abandoned_requests",
    "Requests dropped because their client left or the shutdown grace ran out, by stage.",
    ["model", "stage", "reason"],
)

_SMOOTHING = 0.2  # weight of the newest hold time in the moving average


class QueuedCall(Protocol):
    """A sync call waiting in the queue for a slot (:class:`~.sync_calls.SyncCall`)."""

    def dispatch(self) -> None:
        """Start running in a thread; the slot is already held for it."""

    def run_holding_slot(self) -> QueuedCall | None:
        """Run in the calling thread (which holds the slot for it); returns the next queued
        call, given the slot."""


Waiter = Union["asyncio.Future[None]", QueuedCall]


class Admission:
    """``max_concurrency`` slots and a queue of at most ``max_queue`` waiting requests."""

    def __init__(self, model: str, max_concurrency: int, max_queue: int) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {max_queue}")
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.in_use = 0
        self._waiters: collections.deque[Waiter] = collections.deque()
        self._lock = threading.Lock()
        #: Requests waiting in a batch (serving.batching) rather than for a slot of their own.
        self.extra_queued = 0
        self._closed = False
        self._average_hold: float | None = None
        # Read when /metrics is scraped, not updated on every request.
        QUEUE_LENGTH.labels(model).set_function(lambda: self.queued)
        SLOTS_IN_USE.labels(model).set_function(lambda: self.in_use)
        self._wait_histogram = QUEUE_WAIT.labels(model)

    # -- state -----------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now (or in a batch waiting for one)."""
        return len(self._waiters) + self.extra_queued

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Take no new requests (shutdown): :meth:`admit` raises ShuttingDown from now on."""
        self._closed = True

    def retry_after(self) -> int:
        """Seconds until a slot is likely free for a new request (at least 1)."""
        if self._average_hold is None:
            return 1
        rounds = (self.queued + 1) / self.max_concurrency
        return max(1, min(3600, math.ceil(rounds * self._average_hold)))

    # -- requests --------------------------------------------------------------------------

    def admit(self) -> None:
        """Refuse a new request now if it could not even queue (HTTP 503)."""
        if self._closed:
            REJECTED.labels(self.model, "shutting_down").inc()
            raise ShuttingDown("the server is shutting down; retry (another replica answers)")
        if self.in_use >= self.max_concurrency and self.queued >= self.max_queue:
            REJECTED.labels(self.model, "queue_full").inc()
            raise ServerBusy(
                f"the server is busy: {self.in_use} requests running and {self.queued} "
                f"waiting, the most it queues ({env_name('max_queue')}={self.max_queue}); "
                "retry later",
                retry_after=self.retry_after(),
            )

    async def acquire(self) -> float:
        """Wait for a slot, first come first served; returns the seconds waited.

        Cancelling the wait (client gone, shutdown) leaves the queue and gives back a slot
        that was handed over at the same moment.
        """
        with self._lock:
            if self.in_use < self.max_concurrency and not self._waiters:
                self.in_use += 1
                waiter = None
            else:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
        if waiter is None:
            self._wait_histogram.observe(0)
            return 0.0
        started = time.perf_counter()
        try:
            await waiter  # the releasing request hands its slot over (in_use unchanged)
        except BaseException:
            if not self.withdraw(waiter) and waiter.done() and not waiter.cancelled():
                self.release(None)  # handed over just as we gave up: pass it on
            raise
        waited = time.perf_counter() - started
        self._wait_histogram.observe(waited)
        return waited

    def enqueue(self, call: QueuedCall) -> bool:
        """Queue a sync call for a slot: True if a slot was free and is now held for it
        (the caller starts it), False if it waits (a released slot starts it)."""
        with self._lock:
            if self.in_use < self.max_concurrency and not self._waiters:
                self.in_use += 1
                taken = True
            else:
                self._waiters.append(call)
                taken = False
        return taken  # (the call observes its own wait when it starts)

    def withdraw(self, waiter: Waiter) -> bool:
        """Take a waiter out of the queue; False if it was already given a slot."""
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return False
            return True

    def observe_wait(self, seconds: float) -> None:
        self._wait_histogram.observe(seconds)

    def release(self, held: float | None, *, in_thread: bool = False) -> QueuedCall | None:
        """Give a slot back (to the first waiter, if any); ``held``: seconds it was held.

        If the next waiter is a queued sync call: with ``in_thread`` (called from the thread
        that ran the previous call) it is returned, holding the slot, for that thread to run
        next; otherwise it is started in a pool thread.
        """
        with self._lock:
            if held is not None:
                previous = self._average_hold
                self._average_hold = (
                    held if previous is None else previous + _SMOOTHING * (held - previous)
                )
            while self._waiters:
                waiter = self._waiters.popleft()
                if isinstance(waiter, asyncio.Future):
                    if waiter.done() or waiter.get_loop().is_closed():
                        continue
                    break
                if in_thread:
                    return waiter
                break
            else:
                self.in_use -= 1
                return None
        if isinstance(waiter, asyncio.Future):
            self._grant(waiter)
        else:
            waiter.dispatch()
        return None

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        """Hand the slot to a waiting request, on its loop's thread."""
        loop = waiter.get_loop()
        if asyncio._get_running_loop() is not loop:
            try:
                loop.call_soon_threadsafe(self._grant, waiter)
            except RuntimeError:  # its loop closed meanwhile: pass the slot on
                self.release(None)
            return
        if waiter.done():  # gave up meanwhile: pass the slot on
            self.release(None)
        else:
            waiter.set_result(None)


def count_abandoned(model: str, stage: str, reason: str) -> None:
    """Record a request dropped at ``stage`` (queued, fetching, running, delivering, ...)."""
    ABANDONED.labels(model, stage, reason).inc()
