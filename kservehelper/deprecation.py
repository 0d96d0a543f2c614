"""Warnings about kservehelper 2.0's names and spellings in a user's code, once each.

They are :class:`KServeHelperDeprecationWarning`, a ``DeprecationWarning``. Python hides
``DeprecationWarning`` outside ``__main__``, so a model served with ``kservehelper serve`` would
never show them: kservehelper's commands and servers call :func:`show_deprecations`, which lets
exactly these through (once each), into the server's log.
"""

from __future__ import annotations

import threading
import warnings


class KServeHelperDeprecationWarning(DeprecationWarning):
    """A kservehelper 2.0 name or spelling in the user's code; the message names the new API."""


_warned: set[str] = set()
_lock = threading.Lock()


def first_time(key: str) -> bool:
    """Whether ``key`` has not been warned about in this process yet (and mark it warned)."""
    with _lock:
        if key in _warned:
            return False
        _warned.add(key)
        return True


def warn_once(key: str, message: str, stacklevel: int = 2) -> None:
    """Warn ``message`` the first time ``key`` is seen in this process.

    ``stacklevel`` counts from the caller of this function, as for :func:`warnings.warn`.
    """
    if first_time(key):
        warnings.warn(message, KServeHelperDeprecationWarning, stacklevel=stacklevel + 1)


def warn_once_at(key: str, message: str, filename: str, lineno: int, module: str) -> None:
    """Like :func:`warn_once`, attributed to ``filename:lineno`` (where the user must change it)."""
    if first_time(key):
        warnings.warn_explicit(
            message, KServeHelperDeprecationWarning, filename, lineno, module=module
        )


def forget_warnings() -> None:
    """Make every warning fire again on its next use (for tests)."""
    with _lock:
        _warned.clear()


def show_deprecations() -> None:
    """Show kservehelper's deprecation warnings even outside ``__main__`` (servers, commands)."""
    warnings.filterwarnings("default", category=KServeHelperDeprecationWarning)
