"""Unit tests for slots and the admission queue (no server: plain asyncio)."""

from __future__ import annotations

import asyncio

import pytest

from kservehelper.errors import ServerBusy, ShuttingDown
from kservehelper.serving.admission import Admission


async def _started(task: asyncio.Task[object]) -> None:
    for _ in range(10):  # let the task reach its first await
        await asyncio.sleep(0)


def test_waiters_get_the_slot_first_come_first_served() -> None:
    async def scenario() -> list[str]:
        admission = Admission("fifo", max_concurrency=1, max_queue=3)
        order: list[str] = []
        await admission.acquire()

        async def wait(name: str) -> None:
            admission.admit()
            await admission.acquire()
            order.append(name)
            admission.release(0.01)

        tasks = []
        for name in "bcd":
            task = asyncio.ensure_future(wait(name))
            await _started(task)
            tasks.append(task)
        assert admission.queued == 3
        with pytest.raises(ServerBusy) as refused:
            admission.admit()
        assert refused.value.http_status == 503
        admission.release(0.01)
        await asyncio.gather(*tasks)
        assert admission.in_use == 0 and admission.queued == 0
        return order

    assert asyncio.run(scenario()) == ["b", "c", "d"]


def test_a_cancelled_waiter_leaves_the_queue_and_never_holds_the_slot() -> None:
    async def scenario() -> None:
        admission = Admission("cancel", max_concurrency=1, max_queue=2)
        await admission.acquire()
        leaving = asyncio.ensure_future(admission.acquire())
        staying = asyncio.ensure_future(admission.acquire())
        await _started(staying)
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        assert admission.queued == 1
        admission.release(0.01)
        await staying
        assert admission.in_use == 1 and admission.queued == 0

    asyncio.run(scenario())


def test_a_slot_handed_to_a_waiter_that_gives_up_at_once_is_passed_on() -> None:
    async def scenario() -> None:
        admission = Admission("handover", max_concurrency=1, max_queue=2)
        await admission.acquire()
        first = asyncio.ensure_future(admission.acquire())
        second = asyncio.ensure_future(admission.acquire())
        await _started(second)
        admission.release(0.01)  # hands the slot to `first`...
        first.cancel()  # ...which is cancelled before it runs again
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.wait_for(second, 10)  # the slot went on to `second`
        assert admission.in_use == 1

    asyncio.run(scenario())


def test_admission_works_from_successive_event_loops() -> None:
    admission = Admission("loops", max_concurrency=1, max_queue=1)

    async def once() -> None:
        await admission.acquire()
        admission.release(0.01)

    for _ in range(3):  # e.g. asyncio.run(model.predict(...)) called repeatedly
        asyncio.run(once())
    assert admission.in_use == 0


def test_retry_after_is_estimated_from_recent_hold_times() -> None:
    async def scenario() -> None:
        admission = Admission("retry", max_concurrency=2, max_queue=5)
        assert admission.retry_after() == 1  # nothing measured yet
        for _ in range(2):
            await admission.acquire()
        admission.release(10.0)
        await admission.acquire()
        # 2 slots busy, nobody queued: one round of ~10 s shared by 2 slots.
        assert admission.retry_after() == 5
        for _ in range(2):
            admission.release(10.0)

    asyncio.run(scenario())


def test_a_closed_admission_refuses_with_shutting_down() -> None:
    admission = Admission("closed", max_concurrency=1, max_queue=1)
    admission.close()
    with pytest.raises(ShuttingDown) as refused:
        admission.admit()
    assert refused.value.response_headers() == {"Retry-After": "1"}


@pytest.mark.parametrize(("concurrency", "queue"), [(0, 1), (1, -1)])
def test_bad_limits_are_refused(concurrency: int, queue: int) -> None:
    with pytest.raises(ValueError):
        Admission("bad", max_concurrency=concurrency, max_queue=queue)
