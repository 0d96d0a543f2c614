"""The transformer half of a transformer + predictor pair.

preprocess() takes the user's validated inputs and builds the predictor's request;
postprocess() turns the predictor's answer into the response. Serve it in front of the
predictor: kservehelper serve examples/transformer --predictor-host HOST:PORT
"""

import re

from kservehelper import KServeModel
from kservehelper.types import Input


class Model:
    def preprocess(
        self,
        text: str = Input(description="Text to analyse", min_length=1, max_length=100_000),
        lowercase: bool = Input(description="Count words case-insensitively", default=True),
    ) -> dict:
        words = re.findall(r"[\w']+", text.lower() if lowercase else text)
        if not words:
            raise ValueError("the text has no words to count")
        return {"tokens": words}

    def postprocess(self, response: dict) -> dict:
        ranked = sorted(response["counts"].items(), key=lambda item: (-item[1], item[0]))
        return {"top_words": [word for word, _ in ranked[:3]], "total": response["total"]}


if __name__ == "__main__":
    KServeModel.serve("text-stats", Model)
