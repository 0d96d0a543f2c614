"""Model classes exercising the serving behaviours; tests pick one with --class."""

from __future__ import annotations

import asyncio
import os
import pathlib
import threading
import time
from collections.abc import AsyncIterator, Iterator

from pydantic import BaseModel

from kservehelper import KServeModel
from kservehelper.types import Input, Path


def _wait_for(gate: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.02)


class Values:
    """Every kind of plain value output, selected by an input."""

    def predict(
        self,
        kind: str = Input(
            default="str", choices=["str", "int", "list", "pydantic", "dict", "none", "unjsonable"]
        ),
    ):
        class Result(BaseModel):
            label: str
            score: float

        return {
            "str": lambda: "hello",
            "int": lambda: 42,
            "list": lambda: [1, "two", 3.0],
            "pydantic": lambda: Result(label="cat", score=0.9),
            "dict": lambda: {"answer": 42},
            "none": lambda: None,
            "unjsonable": lambda: {"object": object()},
        }[kind]()


class Failing:
    """ValueError → 400; other exceptions → 500; the server keeps serving."""

    def predict(self, mode: str = Input(default="ok", choices=["ok", "value", "runtime"])) -> dict:
        if mode == "value":
            raise ValueError("the prompt is empty; write something")
        if mode == "runtime":
            raise RuntimeError("CUDA out of memory (simulated)")
        return {"ok": True}


class Slow:
    """A synchronous predict that takes a while and records overlap with other calls."""

    def load(self) -> None:
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def predict(
        self,
        seconds: float = Input(default=5.0, ge=0, le=60),
        started: str = Input(default="", description="A file created when predict starts"),
    ) -> dict:
        if started:
            pathlib.Path(started).touch()
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        time.sleep(seconds)
        with self.lock:
            self.running -= 1
            return {"max_running": self.max_running}


class AsyncHooks:
    """An async predict, with an after_predict hook."""

    async def predict(self, text: str = Input(default="hi")) -> str:
        await asyncio.sleep(0.01)
        return text.upper()

    def after_predict(self, results: dict) -> dict:
        results["post_processed"] = True
        return results


class Streams:
    """Streams of every shape; a gate file lets tests prove items are not buffered."""

    def predict(
        self,
        shape: str = Input(default="generator", choices=["generator", "async", "wrapped", "fails"]),
        count: int = Input(default=3, ge=1, le=100000),
        gate: str = Input(default="", description="Item 1 waits until this file exists"),
    ):
        def items() -> Iterator[dict]:
            for i in range(count):
                if i == 1 and gate:
                    _wait_for(gate)
                if shape == "fails" and i == 2:
                    raise RuntimeError("the model broke mid-stream")
                yield {"n": i}

        async def async_items() -> AsyncIterator[dict]:
            for i in range(count):
                if i == 1 and gate:
                    await asyncio.to_thread(_wait_for, gate)
                yield {"n": i}

        if shape == "async":
            return async_items()
        if shape == "wrapped":
            return KServeModel.wrap_generator(items)
        return items()


class Mismatch:
    """predict() and generate() disagree: start-up must fail and say how."""

    def predict(self, prompt: str = Input(default="")) -> str:
        return prompt

    def generate(self, prompt: str = Input(default=""), steps: int = Input(default=1)):
        yield prompt


class BadDefault:
    """A default that breaks its own constraint: start-up must fail naming the parameter."""

    def predict(self, steps: int = Input(default=500, ge=1, le=100)) -> int:
        return steps


class Files:
    """File inputs and outputs."""

    def predict(
        self,
        source: Path = Input(description="Any file"),
        copies: int = Input(default=1, ge=1, le=5),
    ) -> list[Path]:
        data = pathlib.Path(source).read_bytes()
        outputs = []
        for i in range(copies):
            path = KServeModel.generate_filepath(f"copy{i}.bin")
            pathlib.Path(path).write_bytes(data)
            outputs.append(Path(path))
        return outputs


class Timed:
    """Reports which process ran it and when, to show several processes at work."""

    def predict(self, seconds: float = Input(default=1.0, ge=0, le=10)) -> dict:
        began = time.time()
        time.sleep(seconds)
        return {"pid": os.getpid(), "began": began, "ended": time.time()}


class FileStream:
    """Streams files; also makes one file it never yields (the server must remove it)."""

    def predict(self, count: int = Input(default=2, ge=1, le=10)) -> Iterator[Path]:
        scratch = KServeModel.generate_filepath("scratch.tmp")
        pathlib.Path(scratch).write_text("never yielded")
        for i in range(count):
            path = KServeModel.generate_filepath(f"part{i}.txt")
            pathlib.Path(path).write_text(f"part {i}")
            yield Path(path)
