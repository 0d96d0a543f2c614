"""A model whose every answer records which process ran it and when (replica tests).

``mode`` picks a behaviour, so one model covers what a server must carry from a replica
unchanged: a value, a stream, a file, the model's own 400 and an unexpected exception; and
``gate``, which holds its slot until the test creates ``$REPLICAS_TEST_GATE/open``.
"""

from __future__ import annotations

import os
import time

from kservehelper import KServeModel
from kservehelper.types import Input


class Model:
    def load(self) -> None:
        self.loaded_in = os.getpid()

    def predict(
        self,
        seconds: float = Input(default=0, ge=0, le=30, description="How long to work"),
        mode: str = Input(
            default="value", choices=["value", "stream", "file", "reject", "crash", "gate"]
        ),
        label: str = Input(default="x", max_length=20),
    ):
        started = time.time()
        time.sleep(seconds)
        if mode == "gate":  # hold the slot until the test opens $REPLICAS_TEST_GATE/open
            folder = os.environ["REPLICAS_TEST_GATE"]
            open(os.path.join(folder, f"started-{os.getpid()}-{time.time()}"), "w").close()
            gate = os.path.join(folder, "open")
            deadline = time.monotonic() + 120
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.05)
        if mode == "reject":
            raise ValueError(f"label {label!r} is not accepted")
        if mode == "crash":
            raise ZeroDivisionError("division by zero")
        if mode == "stream":
            return (f"{label}-{i}" for i in range(3))
        if mode == "file":
            path = KServeModel.generate_filepath(f"{label}.txt")
            path.write_text(f"made by {label}")
            return path
        return {
            "label": label,
            "pid": os.getpid(),
            "loaded_in": self.loaded_in,
            "started": started,
            "finished": time.time(),
        }
