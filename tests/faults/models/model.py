"""Models for the fault tests: each records what happened to it in a folder the test reads.

``marks`` (an input) names the folder; a model writes ``<tag>-<event>`` files there:
``started``, ``finished``, ``cancelled`` (it saw ``KServeModel.cancelled()`` or an
``asyncio.CancelledError``), ``finally`` (a stream generator's ``finally`` ran), ``item-N``.
``gate`` names a file the model waits for, so tests control timing without sleeping.
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from collections.abc import Iterator
from typing import Optional

from kservehelper import KServeModel
from kservehelper.types import Input, Path


def mark(marks: str, tag: str, event: str) -> None:
    if marks:
        pathlib.Path(marks, f"{tag}-{event}").touch()


def gate_open(gate: str) -> bool:
    return not gate or pathlib.Path(gate).exists()


class SyncWork:
    """A sync predict working until its gate opens, checking KServeModel.cancelled()."""

    def predict(
        self,
        tag: str = Input(default="job"),
        marks: str = Input(default=""),
        gate: str = Input(default=""),
        seconds: float = Input(default=0.0, ge=0, le=120),
        scratch: bool = Input(default=False, description="Write an output file first"),
    ) -> dict:
        mark(marks, tag, "started")
        if scratch:
            pathlib.Path(KServeModel.generate_filepath(f"{tag}.tmp")).write_text("partial")
        deadline = time.monotonic() + seconds
        while not gate_open(gate) or time.monotonic() < deadline:
            if KServeModel.cancelled():
                mark(marks, tag, "cancelled")
                return {"tag": tag, "cancelled": True}
            time.sleep(0.01)
        mark(marks, tag, "finished")
        return {"tag": tag}


class AsyncWork:
    """An async predict waiting for its gate; records being cancelled."""

    async def predict(
        self,
        tag: str = Input(default="job"),
        marks: str = Input(default=""),
        gate: str = Input(default=""),
    ) -> dict:
        mark(marks, tag, "started")
        try:
            while not gate_open(gate):
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            mark(marks, tag, "cancelled")
            raise
        mark(marks, tag, "finished")
        return {"tag": tag}


class Stream:
    """A sync generator: item 0 at once, then each item waits for ``gate`` (or a delay)."""

    def predict(
        self,
        tag: str = Input(default="stream"),
        marks: str = Input(default=""),
        gate: str = Input(default=""),
        count: int = Input(default=5, ge=1, le=1000),
        delay: float = Input(default=0.0, ge=0, le=10),
    ) -> Iterator[dict]:
        mark(marks, tag, "started")
        try:
            for i in range(count):
                if i:
                    while not gate_open(gate):
                        time.sleep(0.01)
                    time.sleep(delay)
                mark(marks, tag, f"item-{i}")
                yield {"n": i}
        finally:
            mark(marks, tag, "finally")


class AsyncStream:
    """An async generator with the same behaviour as :class:`Stream`."""

    async def predict(
        self,
        tag: str = Input(default="stream"),
        marks: str = Input(default=""),
        gate: str = Input(default=""),
        count: int = Input(default=5, ge=1, le=1000),
    ):
        mark(marks, tag, "started")
        try:
            for i in range(count):
                if i:
                    while not gate_open(gate):
                        await asyncio.sleep(0.01)
                mark(marks, tag, f"item-{i}")
                yield {"n": i}
        finally:
            mark(marks, tag, "finally")


class FileStream:
    """Streams output files; each file is made before its item waits for the gate."""

    def predict(
        self,
        tag: str = Input(default="files"),
        marks: str = Input(default=""),
        gate: str = Input(default=""),
        count: int = Input(default=3, ge=1, le=100),
    ) -> Iterator[Path]:
        try:
            for i in range(count):
                path = pathlib.Path(KServeModel.generate_filepath(f"{tag}-{i}.txt"))
                path.write_text(f"part {i}")
                if i:
                    while not gate_open(gate):
                        time.sleep(0.01)
                mark(marks, tag, f"item-{i}")
                yield Path(path)
        finally:
            mark(marks, tag, "finally")


class Files:
    """Reads a file input; returns output files."""

    def predict(
        self,
        source: Optional[Path] = Input(default=None, description="An input file"),
        copies: int = Input(default=1, ge=1, le=5),
        tag: str = Input(default="files"),
        marks: str = Input(default=""),
    ) -> list[Path]:
        mark(marks, tag, "started")
        data = pathlib.Path(source).read_bytes() if source else b"output"
        made = []
        for i in range(copies):
            path = pathlib.Path(KServeModel.generate_filepath(f"copy{i}.bin"))
            path.write_bytes(data)
            made.append(Path(path))
        return made
