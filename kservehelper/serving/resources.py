"""What a request holds (its slot, folders, files), released in reverse order of taking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Resources:
    """What a request holds, released in reverse order of taking, whatever happens.

    ``contextlib.ExitStack``'s ``callback``/``pop_all``/``close`` for plain callbacks, without
    its per-callback wrappers: this runs for every request. A failing release does not stop
    the others; the first error is raised once all have run.
    """

    __slots__ = ("_callbacks",)

    def __init__(self) -> None:
        self._callbacks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def callback(self, function: Callable[..., Any], *args: Any) -> None:
        self._callbacks.append((function, args))

    def pop_all(self) -> Resources:
        """Move every resource to a new owner (e.g. a stream), leaving this one empty."""
        taken = Resources()
        taken._callbacks, self._callbacks = self._callbacks, []
        return taken

    def close(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        first: BaseException | None = None
        for function, args in reversed(callbacks):
            try:
                function(*args)
            except BaseException as exc:
                first = first or exc
        if first is not None:
            raise first
