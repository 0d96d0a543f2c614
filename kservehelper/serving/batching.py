"""Adaptive batching: concurrent requests to one method grouped into one call of the model.

A model opts in per method with :func:`batch`. Each request is admitted, validated and has its
files downloaded on its own (a bad one gets its own 400 and never joins a batch), then waits in
its method's :class:`Batcher`. A batch takes one slot (``max_concurrency`` counts calls, so
batches), and with it every waiting request up to ``max_size``. The method is called once with
one list per parameter and returns one result per request, in order; each request then answers
on its own (its files delivered to its destination, its stream sent, its error, if the model
returned an exception for it).

Waiting is adaptive: a batch starts as soon as its slot is free, and waits (at most
``max_wait_ms`` after its first request arrived) only while more requests are on their way
(admitted, still being validated or downloading). A lone request never waits; under load the
batch fills while the previous one runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Histogram

from kservehelper.errors import KServeHelperError
from kservehelper.serving import cancellation, outputs, streaming
from kservehelper.serving.admission import Admission
from kservehelper.serving.threads import user_code_threads

F = TypeVar("F", bound=Callable[..., Any])

BATCH_SIZE = Histogram(
    "kservehelper_batch_size",
    "Requests per batched call of the model.",
    ["model", "method"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_WAIT = Histogram(
    "kservehelper_batch_wait_seconds",
    "Time from a batch's first request joining to the model being called.",
    ["model", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)

_SETTINGS_ATTRIBUTE = "__kservehelper_batch__"


@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """How a method's requests are grouped (see :func:`batch`)."""

    max_size: int
    max_wait_ms: float


def batch(max_size: int = 32, max_wait_ms: float = 10) -> Callable[[F], F]:
    """Serve a method in batches: concurrent requests are grouped into one call.

    The method's annotations still describe *one request* (``text: str = Input(...)``, ``->
    Path``): that is what clients send and what the schema, the playground and ``kservehelper
    predict`` show. When called, every parameter receives a *list* (one value per request, in
    order), and the method returns a list with one result per request, in the same order::

        class Model:
            @batch(max_size=32, max_wait_ms=10)
            def predict(self, text: str = Input(max_length=100)) -> str:
                return [t.upper() for t in text]   # text: list[str]

    A result may be an exception instance: that request alone fails with it (a ``ValueError``
    is a 400, like one raised by an unbatched ``predict``). A result may be a file (``Path``),
    delivered to that request's destination, or a generator, streamed to that request.

    Args:
        max_size: The most requests in one call (1 or more).
        max_wait_ms: The longest a batch waits for more requests once it could start (0 or
            more). It waits only while other requests are arriving; a lone request is never
            delayed.

    The method itself is returned unchanged (calling it directly still takes lists).
    """
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"batch(max_size=...) must be an integer of at least 1, got {max_size!r}")
    if (
        isinstance(max_wait_ms, bool)
        or not isinstance(max_wait_ms, (int, float))
        or not (0 <= max_wait_ms <= 60_000)
    ):
        raise ValueError(
            f"batch(max_wait_ms=...) must be a number of milliseconds in [0, 60000], "
            f"got {max_wait_ms!r}"
        )
    settings = BatchSettings(max_size, float(max_wait_ms))

    def mark(method: F) -> F:
        if inspect.isgeneratorfunction(method) or inspect.isasyncgenfunction(method):
            raise TypeError(
                f"@batch cannot be used on {method.__name__}(), a generator: return a list with "
                "one generator per request instead"
            )
        setattr(method, _SETTINGS_ATTRIBUTE, settings)
        return method

    return mark


def batch_settings(model: Any, method: str) -> BatchSettings | None:
    """The :func:`batch` settings of ``model``'s ``method``, if it is batched."""
    function = getattr(model, method, None)
    settings = getattr(function, _SETTINGS_ATTRIBUTE, None)
    return settings if isinstance(settings, BatchSettings) else None


class BatchSizeError(KServeHelperError):
    """The model returned a number of results other than the number of requests."""

    http_status = 500


class _Member:
    """One request waiting in (or running with) a batch."""

    __slots__ = ("abandoned", "cancellation", "future", "joined", "kwargs")

    def __init__(self, kwargs: dict[str, Any], stop: cancellation.Cancellation) -> None:
        self.kwargs = kwargs
        self.cancellation = stop
        self.abandoned = False
        self.joined = time.perf_counter()
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()


class _AllCancelled:
    """``KServeModel.cancelled()`` in a batched call: true once every request in it is."""

    __slots__ = ("_members",)

    def __init__(self, members: list[_Member]) -> None:
        self._members = members

    @property
    def reason(self) -> KServeHelperError | None:
        reasons = [m.cancellation.reason for m in self._members]
        return reasons[0] if reasons and all(r is not None for r in reasons) else None


class SharedSlot:
    """A batch's slot, given back once every request of the batch has let go of it (streams
    hold it until they are closed)."""

    __slots__ = ("_admission", "_holders", "_since")

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self._holders = 1  # the batch call itself
        self._since = time.perf_counter()

    def hold(self) -> None:
        self._holders += 1

    def let_go(self) -> None:
        self._holders -= 1
        if self._holders == 0:
            self._admission.release(time.perf_counter() - self._since)


class Batcher:
    """The waiting requests of one batched method, and the task that starts their batches."""

    def __init__(
        self,
        model: Any,
        model_name: str,
        method: str,
        admission: Admission,
        settings: BatchSettings,
    ) -> None:
        self.model = model
        self.method = method
        self.admission = admission
        self.settings = settings
        self.arriving = 0  # admitted requests not yet waiting here (validating, downloading)
        self._waiting: list[_Member] = []
        self._changed: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._size = BATCH_SIZE.labels(model_name, method)
        self._wait = BATCH_WAIT.labels(model_name, method)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # -- requests --------------------------------------------------------------------------

    def expect(self) -> None:
        """A request to this method was admitted (it may join soon)."""
        self.arriving += 1

    def unexpect(self) -> None:
        """An expected request will not join (it failed before)."""
        self.arriving -= 1
        self._notify()

    async def join(
        self, kwargs: dict[str, Any], stop: cancellation.Cancellation
    ) -> tuple[Any, SharedSlot | None]:
        """Wait in the next batch; returns this request's result and, if it is a stream, the
        batch's slot, which the caller lets go of when its stream is closed. An exception
        the model returned for this request is raised. Abandoned before its batch starts,
        the request leaves the queue (it never runs); while it runs, its result is dropped."""
        member = _Member(kwargs, stop)
        self.arriving -= 1
        self._waiting.append(member)
        self.admission.extra_queued += 1
        self._notify()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())
        try:
            async with stop.section():
                outcome: tuple[Any, SharedSlot | None] = await asyncio.shield(member.future)
                return outcome
        except BaseException:
            member.abandoned = True
            if member in self._waiting:  # left before its batch started
                self._waiting.remove(member)
                self.admission.extra_queued -= 1
                member.future.cancel()
            elif (
                member.future.done()
                and not member.future.cancelled()
                and member.future.exception() is None
            ):  # settled just as we gave up
                _, slot = member.future.result()
                if slot is not None:
                    slot.let_go()
            raise

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- batches ---------------------------------------------------------------------------

    async def _run(self) -> None:
        """Start batches while requests wait (one slot each)."""
        while self._waiting:
            await self.admission.acquire()
            slot = SharedSlot(self.admission)
            if not self._waiting:
                slot.let_go()
                break
            await self._gather_more()
            members = self._waiting[: self.settings.max_size]
            del self._waiting[: len(members)]
            self.admission.extra_queued -= len(members)
            if not members:
                slot.let_go()
                continue
            asyncio.get_running_loop().create_task(self._call(members, slot))

    async def _gather_more(self) -> None:
        """Wait for requests still on their way, up to ``max_wait_ms`` after the first."""
        settings = self.settings
        if settings.max_wait_ms <= 0:
            return
        deadline = self._waiting[0].joined + settings.max_wait_ms / 1000
        if self._changed is None:
            self._changed = asyncio.Event()
        while self._waiting and len(self._waiting) < settings.max_size and self.arriving > 0:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                return

    async def _call(self, members: list[_Member], slot: SharedSlot) -> None:
        """One call of the model for ``members``; each gets its own result."""
        started = time.perf_counter()
        self._size.observe(len(members))
        self._wait.observe(started - members[0].joined)
        context = contextvars.copy_context()
        context.run(cancellation.set_current, _AllCancelled(members))
        files = context.run(outputs.track_outputs)  # what the model makes, as it makes it
        try:
            results = await self._call_model(members, context)
        except BaseException as exc:
            for member in members:
                _settle(member, exc, slot)
            slot.let_go()
            outputs.remove_files(files)
            if not isinstance(exc, Exception):
                raise
            return
        handed: set[pathlib.Path] = set()
        for member, result in zip(members, results, strict=True):
            if _settle(member, result, slot):
                handed.update(result_paths(result))
        slot.let_go()
        # Files the model made but handed to no waiting request (its client left, or never
        # returned at all): nobody will deliver them.
        outputs.remove_files([path for path in files if path not in handed])

    async def _call_model(self, members: list[_Member], context: contextvars.Context) -> list[Any]:
        names = list(members[0].kwargs)
        columns = {name: [member.kwargs[name] for member in members] for name in names}
        function = getattr(self.model, self.method)
        if inspect.iscoroutinefunction(function):
            results = await context.run(asyncio.ensure_future, function(**columns))
        else:
            future = user_code_threads().submit(context.run, function, **columns)
            results = await asyncio.shield(future)
        if isinstance(results, (str, bytes, dict)) or not hasattr(results, "__len__"):
            raise BatchSizeError(
                f"the batched {self.method}() must return a list with one result per request; "
                f"it returned {type(results).__name__}"
            )
        if len(results) != len(members):
            raise BatchSizeError(
                f"the batched {self.method}() was called with {len(members)} request(s) and "
                f"returned {len(results)} result(s); return one result per request, in order"
            )
        return list(results)


def _settle(member: _Member, result: Any, slot: SharedSlot) -> bool:
    """Give ``member`` its result; False if nobody waits for it any more."""
    if member.abandoned or member.future.done():  # its client left while the batch ran
        return False
    if isinstance(result, BaseException):
        member.future.set_exception(result)
        return True
    if streaming.is_stream(result):
        slot.hold()  # released when the request's stream is closed
        member.future.set_result((result, slot))
    else:
        member.future.set_result((result, None))
    return True


def result_paths(result: Any) -> list[pathlib.Path]:
    """The files in one request's result (a path, or a list of paths)."""
    if isinstance(result, os.PathLike):
        return [pathlib.Path(result)]
    if isinstance(result, (list, tuple)):
        return [pathlib.Path(item) for item in result if isinstance(item, os.PathLike)]
    return []
