"""The kservehelper side of the serving benchmark: a no-op model with three constrained inputs."""

import time

from kservehelper import KServeModel
from kservehelper.types import Input


class Model:
    def predict(
        self,
        text: str = Input(default="hello", max_length=100),
        count: int = Input(default=1, ge=0, le=100),
        ratio: float = Input(default=0.5, ge=0.0, le=1.0),
    ) -> dict:
        return {"text": text, "count": count, "ratio": ratio}


class AsyncModel:
    """The same no-op model with an async predict, like the raw KServe baseline's."""

    async def predict(
        self,
        text: str = Input(default="hello", max_length=100),
        count: int = Input(default=1, ge=0, le=100),
        ratio: float = Input(default=0.5, ge=0.0, le=1.0),
    ) -> dict:
        return {"text": text, "count": count, "ratio": ratio}


class Busy:
    """A long sync predict that holds the GIL (pure-Python work): the worst case for health
    checks answered by the same process meanwhile."""

    def predict(self, seconds: float = Input(default=2.0, ge=0, le=60)) -> dict:
        deadline = time.perf_counter() + seconds
        spins = 0
        while time.perf_counter() < deadline:
            spins += 1
        return {"spins": spins}


class SyncStream:
    """The seed's style: a sync generator (driven in a thread by kservehelper)."""

    def predict(self, count: int = Input(default=10000, ge=1, le=1_000_000)):
        for i in range(count):
            yield {"n": i}


class AsyncStream:
    """An async generator, like the raw KServe baseline."""

    async def predict(self, count: int = Input(default=10000, ge=1, le=1_000_000)):
        for i in range(count):
            yield {"n": i}


if __name__ == "__main__":
    KServeModel.serve("noop", Model)
