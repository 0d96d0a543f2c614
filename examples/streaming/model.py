"""The seed's stream, both ways: predict() streams via wrap_generator, and the older-style
generate() (served at :generate) streams too."""

import time

from kservehelper import KServeModel
from kservehelper.types import Input


class Model:
    def load(self):
        pass

    def predict(
        self,
        repeat: int = Input(description="The number of repeats", default=5, ge=1, le=1000),
        delay: float = Input(description="Seconds between items", default=1.0, ge=0, le=10),
    ):
        def _generator():
            for _ in range(repeat):
                yield "Hello World!"
                time.sleep(delay)

        return KServeModel.wrap_generator(_generator)

    def generate(
        self,
        repeat: int = Input(description="The number of repeats", default=5, ge=1, le=1000),
        delay: float = Input(description="Seconds between items", default=1.0, ge=0, le=10),
    ):
        for i in range(repeat):
            yield {"index": i, "text": "Hello World!"}
            time.sleep(delay)


if __name__ == "__main__":
    KServeModel.serve("streaming", Model)
