"""The predictor half of a transformer + predictor pair: counts words it is given."""

from collections import Counter

from kservehelper import KServeModel
from kservehelper.types import Input


class Model:
    def predict(
        self,
        tokens: list[str] = Input(description="Words to count", min_items=1),
    ) -> dict:
        return {"counts": dict(Counter(tokens)), "total": len(tokens)}


if __name__ == "__main__":
    KServeModel.serve("text-stats", Model)
