"""The model the soak benchmark drives: every kind of work, chosen per request by ``mode``.

``predict`` is sync (the seed's style) and unannotated, so it may return a value, files or a
stream; ``generate`` is the async twin for async work.
"""

from __future__ import annotations

import asyncio
import pathlib
import time

from kservehelper import KServeModel
from kservehelper.types import Input, Path

MODES = ["fast", "slow", "fail", "crash", "files", "stream", "file-stream", "input"]


class Model:
    def predict(
        self,
        mode: str = Input(default="fast", choices=MODES),
        seconds: float = Input(default=0.0, ge=0, le=30),
        count: int = Input(default=2, ge=1, le=50),
        source: Path | None = Input(default=None),
    ):
        if mode == "slow":
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if KServeModel.cancelled():
                    return {"cancelled": True}
                time.sleep(0.01)
            return {"slept": seconds}
        if mode == "fail":
            raise ValueError("the input is wrong on purpose")
        if mode == "crash":
            raise RuntimeError("the model broke on purpose")
        if mode == "files":
            return [_output(f"out{i}.txt", i) for i in range(count)]
        if mode in ("stream", "file-stream"):
            return _stream(count, seconds, files=mode == "file-stream")
        if mode == "input":
            return {"size": pathlib.Path(source).stat().st_size if source else 0}
        return {"ok": True}

    async def generate(
        self,
        mode: str = Input(default="fast", choices=MODES),
        seconds: float = Input(default=0.0, ge=0, le=30),
        count: int = Input(default=2, ge=1, le=50),
        source: Path | None = Input(default=None),
    ):
        await asyncio.sleep(seconds)
        return {"async": True}


def _output(name: str, index: int) -> Path:
    path = KServeModel.generate_filepath(name)
    pathlib.Path(path).write_text(f"output {index}\n" * 100)
    return Path(path)


def _stream(count: int, seconds: float, files: bool):
    for i in range(count):
        time.sleep(seconds / count)
        yield _output(f"part{i}.txt", i) if files else {"n": i}
