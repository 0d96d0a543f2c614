"""2.0's ``kservehelper.model.KServeModel`` used directly, as 2.0's tests and scripts do."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kservehelper.deprecation import forget_warnings
from kservehelper.errors import InputError
from kservehelper.types import Input
from kservehelper.types import Path as OutputPath


class Greeter:
    loads = 0

    def load(self) -> None:
        Greeter.loads += 1
        self.greeting = "hello"

    def predict(self, name: str = Input(default="you", max_length=10)) -> dict:
        return {"text": f"{self.greeting} {name}"}

    def after_predict(self, outputs: dict) -> dict:
        outputs["after_predict"] = True
        return outputs


class Upper:
    def preprocess(self, prompt: str = Input(default="a", max_length=8)) -> dict:
        return {"outputs": prompt.upper()}

    def postprocess(self, infer_response: dict) -> dict:
        return {"outputs": infer_response["outputs"] + "!"}


class Writer:
    def predict(self, text: str = Input(default="x")) -> OutputPath:
        from kservehelper.model import KServeModel

        path = KServeModel.generate_filepath("out.txt")
        assert isinstance(path, str)  # 2.0 returned a str
        with open(path, "w") as handle:
            handle.write(text)
        return OutputPath(path)


class Counter:
    def predict(self, n: int = Input(default=3)):  # a stream: no annotation
        from kservehelper.model import KServeModel

        def numbers() -> Iterator[int]:
            yield from range(n)

        return KServeModel.wrap_generator(numbers)


@pytest.fixture
def v2_model() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kservehelper.model import KServeModel
    return KServeModel


def test_constructor_loads_and_predict_runs_in_fresh_loops(v2_model: Any) -> None:
    Greeter.loads = 0
    model = v2_model("greeter", Greeter)
    assert Greeter.loads == 1 and model.ready  # 2.0 loaded in the constructor
    payload = {"name": "Ada", "upload_webhook": "http://localhost"}
    for _ in range(3):  # each asyncio.run is a new event loop
        outputs = asyncio.run(model.predict(dict(payload)))
        assert outputs["text"] == "hello Ada" and outputs["after_predict"] is True
        assert outputs["running_time"].endswith("s")
    assert asyncio.run(model.predict(b'{"name": "Bo"}'))["text"] == "hello Bo"  # bytes too
    assert Greeter.loads == 1


def test_predict_validates_as_a_server_does(v2_model: Any) -> None:
    model = v2_model("greeter", Greeter)
    with pytest.raises(InputError) as error:
        asyncio.run(model.predict({"name": "x" * 11}))
    assert error.value.detail[0]["loc"] == ["name"]
    with pytest.raises(InputError, match="unknown input 'nmae'"):
        asyncio.run(model.predict({"nmae": "Ada"}))


def test_transformer_preprocess_and_postprocess_are_sync(v2_model: Any) -> None:
    model = v2_model("upper", Upper)
    assert isinstance(model, v2_model)
    request = model.preprocess({"prompt": "abc", "upload_webhook": "http://localhost"})
    assert request == {"outputs": "ABC"}
    outputs = model.postprocess(request)
    assert outputs["outputs"] == "ABC!" and "running_time" in outputs
    with pytest.raises(InputError):
        model.preprocess({"prompt": "too long for it"})


def test_transformer_sync_calls_work_inside_a_running_loop(v2_model: Any) -> None:
    model = v2_model("upper", Upper)

    async def from_async_code() -> Any:
        return model.postprocess(model.preprocess({"prompt": "in"}))

    assert asyncio.run(from_async_code())["outputs"] == "IN!"


def test_file_outputs_and_streams(v2_model: Any, tmp_path: Path) -> None:
    outputs = asyncio.run(v2_model("writer", Writer).predict({"text": "hi"}))
    assert outputs["output"] == ["data:text/plain;base64,aGk="]  # no webhook: inline

    async def read_stream() -> list[str]:
        lines = await v2_model("counter", Counter).predict({"n": 2})
        return [line async for line in lines]

    assert [json.loads(line) for line in asyncio.run(read_stream())] == [
        {"id": 0, "data": 0},
        {"id": 1, "data": 1},
    ]


def test_each_2_0_name_warns_once_naming_its_replacement() -> None:
    forget_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from kservehelper.model import KServeModel
        from kservehelper.model import KServeModel as Again

        KServeModel("greeter", Greeter)
        Again("greeter", Greeter)
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert messages == [
        "kservehelper.model.KServeModel is kservehelper 2.0's API and will be removed; "
        "use kservehelper.KServeModel instead"
    ]
    assert caught[0].filename == __file__  # points at the user's line


def test_a_2_0_script_gets_the_warning_on_stderr(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import asyncio\n"
        "from kservehelper.model import KServeModel\n"
        "from kservehelper.types import Input\n"
        "class M:\n"
        "    def predict(self, x: int = Input(default=1)) -> dict:\n"
        "        return {'x': x}\n"
        "print(asyncio.run(KServeModel('m', M).predict({'x': 2}))['x'])\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
    assert done.stderr.count("DeprecationWarning") == 1
    assert "use kservehelper.KServeModel instead" in done.stderr
