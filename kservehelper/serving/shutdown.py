"""Graceful shutdown: on SIGTERM, finish what was accepted, take nothing new, then stop.

:func:`drain` is what the model server runs when it is asked to stop (the signal handling
itself is in :mod:`~kservehelper.serving.kserve_compat`, which owns KServe's server):

1. every served model stops admitting: readiness fails at once (Kubernetes stops routing
   here) and new requests are answered 503 with ``Retry-After``, while the server keeps
   listening, so requests already on their way get an answer rather than a refused
   connection;
2. running and queued requests (and open streams) get ``KSERVEHELPER_SHUTDOWN_GRACE``
   seconds to finish;
3. whatever is left is cancelled: each gets a 503 in the usual error shape (a stream ends
   with an error record), and its files are removed;
4. the server stops and the process's folder is removed; the process exits with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Protocol

from kservehelper.errors import KServeHelperError, ShuttingDown
from kservehelper.settings import env_name, get_settings

logger = logging.getLogger("kserve.kservehelper")


class Drainable(Protocol):
    """What a served model offers the shutdown (a :class:`~kservehelper.serving.pipeline.
    Pipeline` does; a model serving requests some other way can too)."""

    def open_requests(self) -> int:
        """Requests accepted and not answered yet (running, queued, streaming)."""
        ...

    def stop_admitting(self) -> None:
        """From now on: not ready, and new requests are answered 503 ``ShuttingDown``."""
        ...

    def cancel_all(self, reason: KServeHelperError) -> None:
        """Answer every open request with ``reason`` now."""
        ...


ANSWER_TIMEOUT = 5.0
"""Seconds the cancelled requests get to send their 503 before the server stops anyway."""

_POLL = 0.05

_served: weakref.WeakSet[Drainable] = weakref.WeakSet()


def register(served: Drainable) -> None:
    """Include ``served`` (one per served model) in this process's shutdown."""
    _served.add(served)


def open_requests() -> int:
    """Requests being served in this process (running, queued or streaming)."""
    return sum(served.open_requests() for served in list(_served))


def stop_admitting() -> None:
    """Step 1: readiness fails and new requests are refused (503), from now on."""
    for served in list(_served):
        served.stop_admitting()


def cancel_everything() -> None:
    """Answer every open request with 503 now (the grace period is over)."""
    grace = get_settings().shutdown_grace
    reason = ShuttingDown(
        "the server is shutting down and this request did not finish within its grace "
        f"period ({env_name('shutdown_grace')}={grace:g}s); retry"
    )
    for served in list(_served):
        served.cancel_all(reason)


async def _wait_until_idle(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while open_requests() and time.monotonic() < deadline:
        await asyncio.sleep(_POLL)
    return not open_requests()


async def drain(grace: float | None = None) -> None:
    """Steps 1-3 above; returns when nothing is left to answer (or answering timed out)."""
    grace = get_settings().shutdown_grace if grace is None else grace
    stop_admitting()
    pending = open_requests()
    logger.info(
        "shutting down: not ready any more; %d request(s) in progress get %gs to finish",
        pending,
        grace,
    )
    if await _wait_until_idle(grace):
        logger.info("shutting down: every request finished")
        return
    logger.warning(
        "shutting down: grace period over, answering %d unfinished request(s) with 503",
        open_requests(),
    )
    cancel_everything()
    if not await _wait_until_idle(ANSWER_TIMEOUT):
        logger.warning("shutting down: %d request(s) could not be answered", open_requests())
