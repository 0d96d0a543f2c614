"""A GPU-style model: the shape of a CUDA model, with nothing heavy to import.

A real one would import torch in load() and move its weights to "cuda"; this one only reports
which device it would use, so `kservehelper predict` and `kservehelper deploy` run anywhere.
"""

from __future__ import annotations

import os

from kservehelper import Input


class Model:
    def load(self) -> None:
        # NVIDIA's device plugin sets NVIDIA_VISIBLE_DEVICES in pods that were given a GPU.
        visible = os.environ.get("NVIDIA_VISIBLE_DEVICES", "")
        self.device = "cuda" if visible and visible != "void" else "cpu"

    def predict(
        self,
        prompt: str = Input(description="Text to upper-case on the model's device"),
        repeat: int = Input(description="How many times", default=1, ge=1, le=10),
    ) -> dict:
        return {"device": self.device, "text": " ".join([prompt.upper()] * repeat)}
