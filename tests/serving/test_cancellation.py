"""Unit tests for request cancellation: sections, the flag threads see, foreign cancels."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from kservehelper.errors import ClientDisconnected, ShuttingDown
from kservehelper.serving.cancellation import Cancellation, is_cancelled
from kservehelper.serving.threads import user_code_threads


def test_a_section_stops_at_once_and_raises_the_reason() -> None:
    async def scenario() -> None:
        cancellation = Cancellation()
        started = asyncio.Event()

        async def work() -> None:
            async with cancellation.section():
                started.set()
                await asyncio.sleep(3600)

        task = asyncio.ensure_future(work())
        await started.wait()
        cancellation.cancel(ClientDisconnected("gone"))
        with pytest.raises(ClientDisconnected):
            await task
        # The task itself was not left cancelled (Python 3.11+ counts cancel requests).
        assert not task.cancelled()

    asyncio.run(scenario())


def test_the_first_reason_wins_and_later_sections_refuse_to_start() -> None:
    async def scenario() -> None:
        cancellation = Cancellation()
        cancellation.cancel(ShuttingDown("stopping"))
        cancellation.cancel(ClientDisconnected("gone"))
        assert isinstance(cancellation.reason, ShuttingDown)
        with pytest.raises(ShuttingDown):
            async with cancellation.section():
                raise AssertionError("must not run")

    asyncio.run(scenario())


def test_a_cancel_from_elsewhere_stays_a_cancel() -> None:
    async def scenario() -> None:
        cancellation = Cancellation()

        async def work() -> None:
            async with cancellation.section():
                await asyncio.sleep(3600)

        task = asyncio.ensure_future(work())
        await asyncio.sleep(0)
        task.cancel()  # not the request's cancellation: e.g. the server stopping hard
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_finished_request_ignores_late_cancels() -> None:
    cancellation = Cancellation()
    cancellation.finish()
    cancellation.cancel(ClientDisconnected("the response is complete"))
    assert cancellation.reason is None


def test_model_code_in_a_thread_sees_the_flag() -> None:
    async def scenario() -> list[bool]:
        cancellation = Cancellation()
        cancellation.activate()
        checked = threading.Event()
        seen: list[bool] = []

        def predict() -> None:
            seen.append(is_cancelled())
            checked.set()
            while not is_cancelled():
                threading.Event().wait(0.01)
            seen.append(is_cancelled())

        running = user_code_threads().submit(predict)
        await asyncio.to_thread(checked.wait, 30)
        cancellation.cancel(ClientDisconnected("gone"))
        await asyncio.wait_for(running, 30)
        return seen

    assert asyncio.run(scenario()) == [False, True]
    assert contextvars.copy_context().run(is_cancelled) is False  # outside any request


def test_user_code_threads_are_daemons() -> None:
    async def scenario() -> bool:
        return await user_code_threads().submit(lambda: threading.current_thread().daemon)

    assert asyncio.run(scenario()) is True
