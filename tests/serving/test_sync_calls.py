"""Sync calls queued for a slot as they are (no server: plain asyncio and real threads)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kservehelper.errors import ClientDisconnected
from kservehelper.serving.admission import Admission
from kservehelper.serving.cancellation import Cancellation
from kservehelper.serving.sync_calls import SyncCall


def _call(admission: Admission, function: Callable[..., Any], *args: Any) -> SyncCall:
    call = SyncCall(admission, Cancellation(), function, args, {})
    call.start()
    return call


def _record(log: list[tuple[str, str]], name: str, gate: threading.Event | None = None) -> str:
    if gate is not None:
        assert gate.wait(30), "the gate never opened"
    log.append((name, threading.current_thread().name))
    return name


def test_queued_calls_run_in_order_in_the_thread_that_frees_the_slot() -> None:
    async def scenario() -> None:
        admission = Admission("chain", max_concurrency=1, max_queue=8)
        gate = threading.Event()
        log: list[tuple[str, str]] = []
        first = _call(admission, _record, log, "a", gate)
        rest = [_call(admission, _record, log, name) for name in "bcd"]
        assert admission.in_use == 1 and admission.queued == 3
        gate.set()
        results = await asyncio.gather(first.future, *(call.future for call in rest))
        assert results == ["a", "b", "c", "d"]
        assert [name for name, _ in log] == ["a", "b", "c", "d"]
        # No trip through the event loop between calls: one thread ran them back to back.
        assert len({thread for _, thread in log}) == 1
        assert admission.in_use == 0 and admission.queued == 0

    asyncio.run(scenario())


def test_a_call_abandoned_while_queued_never_runs_and_passes_the_slot_on() -> None:
    async def scenario() -> None:
        admission = Admission("abandon", max_concurrency=1, max_queue=8)
        gate = threading.Event()
        log: list[tuple[str, str]] = []
        running = _call(admission, _record, log, "running", gate)
        withdrawn = _call(admission, _record, log, "withdrawn")
        cancelled = SyncCall(admission, Cancellation(), _record, (log, "cancelled"), {})
        cancelled.start()
        last = _call(admission, _record, log, "last")
        assert withdrawn.withdraw()  # the request's client left: out of the queue
        # Cancelled but still queued (a thread may take it first): it must not run either.
        cancelled._stop.cancel(ClientDisconnected("gone"))
        gate.set()
        assert await running.future == "running"
        assert await last.future == "last"
        assert withdrawn.future.cancelled()
        await asyncio.sleep(0)
        assert cancelled.future.cancelled()
        assert [name for name, _ in log] == ["running", "last"]
        assert admission.in_use == 0 and admission.queued == 0

    asyncio.run(scenario())


def test_requests_on_the_loop_and_queued_calls_share_one_queue_in_order() -> None:
    async def scenario() -> None:
        admission = Admission("mixed", max_concurrency=1, max_queue=8)
        gate = threading.Event()
        log: list[tuple[str, str]] = []
        first = _call(admission, _record, log, "sync-1", gate)

        async def on_loop() -> None:
            await admission.acquire()
            log.append(("async", "loop"))
            await asyncio.sleep(0.01)
            admission.release(0.01)

        waiter = asyncio.ensure_future(on_loop())
        for _ in range(5):
            await asyncio.sleep(0)
        second = _call(admission, _record, log, "sync-2")
        gate.set()
        await asyncio.gather(first.future, waiter, second.future)
        assert [name for name, _ in log] == ["sync-1", "async", "sync-2"]
        assert admission.in_use == 0

    asyncio.run(scenario())


def test_a_stream_keeps_its_slot_until_released() -> None:
    def numbers() -> Iterator[int]:
        yield from range(3)

    async def scenario() -> None:
        admission = Admission("stream", max_concurrency=1, max_queue=8)
        stream = _call(admission, numbers)
        log: list[tuple[str, str]] = []
        after = _call(admission, _record, log, "after")
        generator = await stream.future
        assert list(generator) == [0, 1, 2]
        assert stream.holds_slot and admission.in_use == 1 and not after.future.done()
        stream.holds_slot = False  # what Request.release_slot does when the stream closes
        admission.release(0.01)
        assert await after.future == "after"

    asyncio.run(scenario())


def test_an_error_in_the_model_is_the_callers_and_frees_the_slot() -> None:
    def fail() -> None:
        raise ValueError("bad input")

    async def scenario() -> None:
        admission = Admission("error", max_concurrency=1, max_queue=8)
        failing = _call(admission, fail)
        try:
            await failing.future
        except ValueError as exc:
            assert str(exc) == "bad input"
        else:
            raise AssertionError("the error was lost")
        assert admission.in_use == 0 and not failing.holds_slot

    asyncio.run(scenario())


def test_a_batched_request_abandoned_while_waiting_never_runs() -> None:
    from kservehelper.serving.batching import Batcher, BatchSettings

    class Model:
        def __init__(self) -> None:
            self.seen: list[list[str]] = []

        def predict(self, text: list[str]) -> list[str]:
            self.seen.append(list(text))
            return [t.upper() for t in text]

    async def scenario() -> None:
        admission = Admission("batched", max_concurrency=1, max_queue=8)
        model = Model()
        batcher = Batcher(model, "batched", "predict", admission, BatchSettings(8, 0))
        await admission.acquire()  # the model is busy: requests wait
        leaving, staying = Cancellation(), Cancellation()
        for _ in range(2):
            batcher.expect()
        left = asyncio.ensure_future(batcher.join({"text": "gone"}, leaving))
        kept = asyncio.ensure_future(batcher.join({"text": "kept"}, staying))
        for _ in range(5):
            await asyncio.sleep(0)
        assert admission.queued >= 2
        leaving.cancel(ClientDisconnected("the client closed the connection"))
        for _ in range(5):
            await asyncio.sleep(0)
        admission.release(0.01)
        assert await kept == ("KEPT", None)
        assert left.done() and isinstance(left.exception(), ClientDisconnected)
        assert model.seen == [["kept"]]
        for _ in range(5):
            await asyncio.sleep(0)
        assert admission.in_use == 0 and admission.queued == 0

    asyncio.run(scenario())
