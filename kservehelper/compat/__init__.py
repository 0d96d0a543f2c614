"""kservehelper 2.0's module paths and names, as thin adapters over today's code.

Models and scripts written for kservehelper 2.0 keep working unchanged:

=============================================  ============================================
2.0                                            today
=============================================  ============================================
``kservehelper.model.KServeModel``             ``kservehelper.KServeModel``
``kservehelper.cache.MemoryCache``             ``MemoryLRUCache.get_or_load`` + a loader
``kservehelper.cache.DiskLRUCache``            ``kservehelper.cache.DiskCache``
``DiskCache(num_shards, capacity, ...)``       ``DiskCache(directory, max_bytes)``
``ModelCache(..., model_load_func=...)``       ``ModelCache(load_fn, max_models, disk)``
``kservehelper.storage.S3Storage``             ``kservehelper.storage.transfer``
``kservehelper.utils.upload_files``            ``upload_webhook`` / ``storage.base.resolve``
=============================================  ============================================

Each 2.0 name raises a :class:`DeprecationWarning` once per process, naming its replacement;
none of them is a second implementation: each delegates to the module named on its right.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from kservehelper.deprecation import warn_once

T = TypeVar("T")

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn_deprecated(old: str, new: str) -> None:
    """Warn once per process that 2.0's ``old`` is deprecated in favour of ``new``.

    The warning points at the caller's line outside kservehelper (the user's code).
    """
    warn_once(
        old,
        f"{old} is kservehelper 2.0's API and will be removed; use {new} instead",
        stacklevel=_user_stacklevel(),
    )


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the innermost frame outside this package (1 = our caller)."""
    frame = sys._getframe(2)  # the caller of warn_deprecated
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from synchronous code, as 2.0's sync API did.

    Without a running event loop in this thread it gets a fresh one (``asyncio.run``); called
    from inside a running loop (async model code calling a 2.0 sync function), it runs in a
    worker thread with its own loop, so the caller's loop is never re-entered.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kservehelper-v2") as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()
