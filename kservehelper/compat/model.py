"""2.0's ``kservehelper.model.KServeModel``, over today's :class:`~kservehelper.KServeModel`.

2.0's tests and scripts use the class directly, without a server::

    model = KServeModel("test", CustomModel)          # loads the model, as 2.0 did
    outputs = asyncio.run(model.predict(payload))     # the response dict, each call a new loop

    transform = KServeModel("test", CustomTransform)  # a class with preprocess/postprocess
    outputs = transform.postprocess(transform.preprocess(payload))   # sync, as in 2.0

Everything a request does (validation, defaults, files, ``after_predict``, ``running_time``)
is today's code path; this class only keeps 2.0's calling conventions.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import AsyncIterator
from typing import Any

from kservehelper.compat import run_sync, warn_deprecated
from kservehelper.serving import outputs
from kservehelper.serving.model import KServeModel as ServedModel
from kservehelper.serving.model import ModelStream
from kservehelper.serving.transformer import TransformerModel, is_transformer


def _decode(payload: Any) -> Any:
    """2.0 accepted the request body as bytes too."""
    if isinstance(payload, (bytes, bytearray)):
        return json.loads(payload.decode("utf-8"))
    return payload


async def _stream_lines(stream: ModelStream) -> AsyncIterator[str]:
    """A stream as 2.0 returned it from ``predict``: JSON lines ``{"id": i, "data": item}``."""
    index = 0
    try:
        async for batch in stream.batches:  # output files are URLs already
            for item in batch:
                yield json.dumps({"id": index, "data": item}, ensure_ascii=False) + "\n"
                index += 1
    finally:
        await stream.aclose()  # stops the generator, releases the request's slot and files


class KServeModel(ServedModel):
    """kservehelper 2.0's ``KServeModel``; new code uses ``from kservehelper import KServeModel``.

    Differences from today's class, all kept for 2.0 code: the constructor loads the model;
    ``predict`` accepts a bytes payload; for a class with ``preprocess``/``postprocess`` the
    two are synchronous methods usable from plain code; ``generate_filepath`` returns a
    ``str``.
    """

    def __new__(cls, name: str, model_class: type, **kwargs: Any) -> Any:
        if cls is KServeModel and is_transformer(model_class):
            return super().__new__(V2Transformer)
        return super().__new__(cls)

    def __init__(self, name: str, model_class: type, **kwargs: Any) -> None:
        warn_deprecated("kservehelper.model.KServeModel", "kservehelper.KServeModel")
        super().__init__(name, model_class, **kwargs)
        self.load()  # 2.0 loaded in the constructor

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        result = await super().predict(_decode(payload), headers, response_headers)
        if isinstance(result, ModelStream):
            return _stream_lines(result)
        return result

    @staticmethod
    def generate_filepath(filename: str) -> str:  # type: ignore[override]
        """A unique path for an output file, as a ``str`` (2.0's return type)."""
        return str(outputs.generate_filepath(filename))


class V2Transformer(KServeModel, TransformerModel):
    """2.0's ``KServeModel`` for a class with ``preprocess``/``postprocess``.

    Called from plain code, ``preprocess(payload)`` validates and runs the user's
    ``preprocess``; ``postprocess(response)`` runs the user's ``postprocess`` and encodes its
    result (files delivered, ``running_time`` added), exactly as a served transformer does.
    The request state a served transformer keeps between the two calls is carried from one
    call to the next on this instance (2.0 kept it on the instance too: one request at a time).
    """

    _request_context: contextvars.Context | None = None

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        async def run() -> tuple[Any, contextvars.Context]:
            result = await TransformerModel.preprocess(self, _decode(payload), headers)
            return result, contextvars.copy_context()

        result, self._request_context = run_sync(run())
        return result

    def postprocess(
        self,
        result: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        saved, self._request_context = self._request_context, None

        async def run() -> Any:
            for variable, value in (saved or contextvars.Context()).items():
                variable.set(value)
            return await TransformerModel.postprocess(self, result, headers, response_headers)

        return run_sync(run())
