"""A model written for kservehelper 2.0, scaled the 2.0 way: ``num_replicas=2``."""

import os
import sys

from kservehelper.model import KServeModel
from kservehelper.types import Input


class Model:
    def load(self):
        self.loaded_in = os.getpid()

    def predict(self, text: str = Input(description="Echoed back", default="hi")) -> dict:
        return {"text": text, "pid": os.getpid(), "loaded_in": self.loaded_in}


if __name__ == "__main__":
    name = sys.argv[sys.argv.index("--name") + 1] if "--name" in sys.argv else "replicas-v2"
    KServeModel.serve(name, Model, num_replicas=2)
