"""A model written for kservehelper 2.0: bare list/dict inputs and batch inputs, served under the
name its `KServeModel.serve("...")` call gives (there is no config.yaml)."""

from typing import Dict, List  # noqa: UP035 (2.0's spellings, on purpose)

from kservehelper import KServeModel
from kservehelper.types import Input


class Model:
    def load(self):
        pass

    def predict(
        self,
        param: str = Input(description="global param", default="test_param"),
        batch: list = [  # noqa: B006 (2.0's batch shape: the default describes one item)
            {
                "prompt": Input(description="Input prompt", default="standing, (full body)++"),
                "param_a": Input(description="param", default=1),
                "param_b": Input(description="param", default=1, ge=0, le=2),
            }
        ],
        items: List = Input(description="any JSON values", default=[], max_items=3),  # noqa: UP006
        options: dict = Input(description="any JSON object", default={}),
    ) -> Dict:  # noqa: UP006
        return {"outputs": batch, "extra": param, "items": items, "options": options}


if __name__ == "__main__":
    KServeModel.serve("test-shapes", Model)
