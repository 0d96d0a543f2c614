"""Batched models for the batching tests.

A request with ``hold`` set blocks its batch until the file named by ``$BATCH_GATE`` exists, so
a test can let requests pile up behind it and then see them run as one batch.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import time
from collections.abc import Iterator

from kservehelper import KServeModel, Path, batch
from kservehelper.types import Input


def _wait_for_gate(hold: list[bool]) -> None:
    if any(hold):
        gate = pathlib.Path(os.environ["BATCH_GATE"])
        deadline = time.monotonic() + 120
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


class Model:
    @batch(max_size=8, max_wait_ms=5)
    def predict(
        self,
        text: str = Input(max_length=10),
        hold: bool = False,
        fail: bool = False,
    ) -> dict:
        _wait_for_gate(hold)
        return [
            ValueError(f"cannot take {t!r}") if f else {"text": t.upper(), "batch": len(text)}
            for t, f in zip(text, fail, strict=True)
        ]


class AsyncModel:
    @batch(max_size=8, max_wait_ms=5)
    async def predict(self, text: str = Input(max_length=10), hold: bool = False) -> dict:
        if any(hold):  # waits on the event loop, which must keep serving meanwhile
            gate = pathlib.Path(os.environ["BATCH_GATE"])
            while not gate.exists():
                await asyncio.sleep(0.02)
        return [{"text": t.upper(), "batch": len(text)} for t in text]


class Files:
    @batch(max_size=8, max_wait_ms=5)
    def predict(self, text: str = "x", hold: bool = False) -> Path:
        _wait_for_gate(hold)
        paths = []
        for t in text:
            path = KServeModel.generate_filepath(f"{t}.txt")
            path.write_text(f"{t} of {len(text)}")
            paths.append(path)
        return paths


class Streams:
    @batch(max_size=8, max_wait_ms=5)
    def predict(
        self, count: int = Input(default=3, ge=0, le=20), hold: bool = False
    ) -> Iterator[int]:
        _wait_for_gate(hold)
        return [(i for i in range(c)) for c in count]


class WrongLength:
    @batch(max_size=8, max_wait_ms=5)
    def predict(self, text: str = "x") -> str:
        return []
