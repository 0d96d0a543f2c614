"""The baseline of the serving benchmark: a hand-written ``kserve.Model`` on KServe's own route.

It validates the same three inputs by hand (what a user writes without kservehelper), and
streams ``{"id": i, "data": ...}`` JSON lines from an async generator when asked to.
Run: ``python benchmarks/raw_kserve.py --http_port N --enable_grpc false``.

``--thread`` makes it the floor of any server that keeps its event loop free of the model's
sync code: the same validation, run in a worker thread (``loop.run_in_executor``, asyncio's
default executor), so each request pays one bare thread round trip and nothing else.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

THREAD = "--thread" in sys.argv
if THREAD:  # ours, not KServe's: KServe parses the rest of the command line
    sys.argv.remove("--thread")

import orjson  # noqa: E402
from kserve import Model, ModelServer  # noqa: E402
from kserve.errors import InvalidInput  # noqa: E402


class RawNoop(Model):
    def __init__(self) -> None:
        super().__init__("noop")
        self.ready = True

    async def predict(
        self, payload: Any, headers: Any = None, response_headers: Any = None
    ) -> dict[str, Any] | AsyncIterator[bytes]:
        if THREAD:
            return await asyncio.get_running_loop().run_in_executor(None, self.check, payload)
        return self.check(payload)

    def check(self, payload: Any) -> dict[str, Any] | AsyncIterator[bytes]:
        if not isinstance(payload, dict):
            raise InvalidInput("expected a JSON object")
        if "stream" in payload:
            count = payload["stream"]
            if not isinstance(count, int) or not 1 <= count <= 1_000_000:
                raise InvalidInput("stream must be an integer in [1, 1000000]")
            return self._stream(count)
        unknown = set(payload) - {"text", "count", "ratio"}
        if unknown:
            raise InvalidInput(f"unknown inputs: {sorted(unknown)}")
        text = payload.get("text", "hello")
        count = payload.get("count", 1)
        ratio = payload.get("ratio", 0.5)
        if not isinstance(text, str) or len(text) > 100:
            raise InvalidInput("text must be a string of at most 100 characters")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100:
            raise InvalidInput("count must be an integer in [0, 100]")
        if not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
            raise InvalidInput("ratio must be a number in [0, 1]")
        return {"text": text, "count": count, "ratio": float(ratio)}

    async def _stream(self, count: int) -> AsyncIterator[bytes]:
        for i in range(count):
            yield orjson.dumps({"id": i, "data": {"n": i}}) + b"\n"


if __name__ == "__main__":
    ModelServer().start([RawNoop()])
