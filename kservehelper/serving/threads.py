"""Threads that run the user's synchronous code (``predict``, hooks, stream generators).

Sync methods run off the event loop so the server keeps answering health checks while they
work. They run here rather than in asyncio's default executor for two reasons:

* the threads are daemons: a ``predict`` that ignores ``KServeModel.cancelled()`` after its
  client left, or is still running when the shutdown grace period ends, cannot keep the
  process from exiting (the default executor's threads are joined at exit);
* a thread is started whenever every existing one is busy (up to a large cap), so
  ``max_concurrency`` alone decides how many predictions run at once; asyncio's default
  executor would silently cap it at ``min(32, cores + 4)``.

Each job runs in the ``contextvars`` context it was submitted from, so the request's state
(its output files, its cancellation flag) is visible to the user's code.

Results go back to the event loop through its :class:`Inbox`: one wake-up of the loop carries
every result that finished since the last one (a cross-thread wake-up costs more than a small
prediction; under load several results share one).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger("kserve.kservehelper")

MAX_THREADS = 256
"""A backstop against runaway thread creation; real concurrency is bounded by the slots."""


class Inbox:
    """Callbacks posted from threads to one event loop, run there in batches.

    The first :meth:`post` after a batch ran wakes the loop (``call_soon_threadsafe``); posts
    made before the loop gets to them join that batch without waking it again.
    """

    __slots__ = ("__weakref__", "_lock", "_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[Callable[[], object]] | None = None

    def post(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` on the loop soon; dropped if the loop is closed."""
        with self._lock:
            if self._pending is not None:
                self._pending.append(callback)
                return
            self._pending = [callback]
        try:
            self._loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            with self._lock:
                self._pending = None

    def _run(self) -> None:
        with self._lock:
            callbacks, self._pending = self._pending or [], None
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one bad callback must not drop the others' results
                logger.exception("settling a thread's result failed")


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Inbox] = weakref.WeakKeyDictionary()


def inbox_for(loop: asyncio.AbstractEventLoop) -> Inbox:
    """The inbox of ``loop`` (call from the loop's own thread)."""
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _inboxes[loop] = Inbox(loop)
    return inbox


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Give ``future`` (on its loop's thread) the outcome of a thread's call."""
    if future.done():
        return
    if isinstance(error, StopIteration):  # asyncio futures refuse StopIteration
        future.set_exception(RuntimeError(f"the model's code raised {error!r}"))
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class UserCodeThreads:
    """A pool of daemon threads; :meth:`submit` runs one call in one of them."""

    def __init__(self, name: str = "kservehelper-user", max_threads: int = MAX_THREADS) -> None:
        self._name = name
        self._max_threads = max_threads
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = 0
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    def submit(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Start ``function(*args, **kwargs)`` in a thread, in a copy of the current context.

        The returned future is settled on the calling event loop. Cancelling it does not
        stop the thread (nothing can): the caller decides what to do while it finishes.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        inbox = inbox_for(loop)
        context = contextvars.copy_context()
        call = functools.partial(function, *args, **kwargs)

        def job() -> None:
            try:
                result = context.run(call)
            except BaseException as exc:  # handed to the awaiting coroutine
                inbox.post(functools.partial(settle, future, None, exc))
            else:
                inbox.post(functools.partial(settle, future, result, None))

        self.start(job)
        return future

    def start(self, job: Callable[[], None]) -> None:
        """Run ``job()`` in a pool thread (it reports its own outcome; errors are logged)."""
        self._jobs.put(job)
        if not self._idle.acquire(blocking=False):
            self._start_thread()

    def _start_thread(self) -> None:
        with self._lock:
            if self._started >= self._max_threads:
                return  # the job waits for a thread to come free
            self._started += 1
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{next(self._counter)}", daemon=True
        )
        thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except BaseException:
                logger.exception("a user-code thread's job failed")
            del job
            self._idle.release()


_shared: UserCodeThreads | None = None
_shared_lock = threading.Lock()


def user_code_threads() -> UserCodeThreads:
    """The process's pool (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = UserCodeThreads()
        return _shared
