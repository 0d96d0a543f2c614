"""A model whose load() waits for a gate file the test creates (a long load, no sleeping)."""

from __future__ import annotations

import os
import pathlib
import time

from kservehelper import KServeModel


class Model:
    def load(self) -> None:
        gate = pathlib.Path(os.environ["SLOW_LOAD_GATE"])
        deadline = time.monotonic() + 300
        while not gate.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{gate} never appeared")
            time.sleep(0.05)
        self.pid = os.getpid()

    def predict(self, text: str = "hi") -> dict:
        return {"text": text, "pid": self.pid}


if __name__ == "__main__":
    KServeModel.serve("slow-load", Model)
