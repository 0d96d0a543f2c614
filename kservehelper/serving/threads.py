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
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_THREADS = 256
"""A backstop against runaway thread creation; real concurrency is bounded by the slots."""

_Job = tuple["asyncio.Future[Any]", contextvars.Context, Callable[[], Any]]


class UserCodeThreads:
    """A pool of daemon threads; :meth:`run` awaits one call in one of them."""

    def __init__(self, name: str = "kservehelper-user", max_threads: int = MAX_THREADS) -> None:
        self._name = name
        self._max_threads = max_threads
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
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
        call = functools.partial(function, *args, **kwargs)
        self._jobs.put((future, contextvars.copy_context(), call))
        if not self._idle.acquire(blocking=False):
            self._start_thread()
        return future

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
            future, context, call = self._jobs.get()
            try:
                result = context.run(call)
            except BaseException as exc:  # handed to the awaiting coroutine
                _settle(future, None, exc)
            else:
                _settle(future, result, None)
            del future, context, call
            self._idle.release()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    def apply() -> None:
        if future.done():
            return
        if isinstance(error, StopIteration):  # asyncio futures refuse StopIteration
            future.set_exception(RuntimeError(f"the model's code raised {error!r}"))
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        future.get_loop().call_soon_threadsafe(apply)


_shared: UserCodeThreads | None = None
_shared_lock = threading.Lock()


def user_code_threads() -> UserCodeThreads:
    """The process's pool (created on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = UserCodeThreads()
        return _shared
