"""The batching benchmark's model: a call costs 20 ms plus 0.5 ms per item, GIL released
(``time.sleep``), like a GPU model whose kernel time grows slowly with the batch."""

from __future__ import annotations

import time

from kservehelper import batch
from kservehelper.types import Input

FIXED_S = 0.020
PER_ITEM_S = 0.0005


class Unbatched:
    def predict(self, x: float = Input(default=1.0, ge=-1e6, le=1e6)) -> dict:
        time.sleep(FIXED_S + PER_ITEM_S)
        return {"y": x * 2}


class Batched:
    @batch(max_size=32, max_wait_ms=10)
    def predict(self, x: float = Input(default=1.0, ge=-1e6, le=1e6)) -> dict:
        time.sleep(FIXED_S + PER_ITEM_S * len(x))
        return [{"y": value * 2} for value in x]
