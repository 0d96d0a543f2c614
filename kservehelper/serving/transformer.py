"""Transformers: a model class with ``preprocess(...)`` and ``postprocess(response)`` instead
of ``predict``, served in front of a separate predictor (KServe's ``--predictor_host``).

``preprocess``'s parameters are validated exactly like ``predict``'s; its return value (a
dict) is sent to the predictor's ``/v1/models/{name}:predict``; the predictor's answer goes to
``postprocess``, whose result is encoded like a ``predict`` result (files delivered as URLs,
``after_predict``, ``"running_time"``).
"""

from __future__ import annotations

import contextvars
import shutil
import time
from dataclasses import dataclass
from typing import Any

import httpx

from kservehelper.errors import SignatureError, UploadError
from kservehelper.serving import outputs
from kservehelper.serving.model import KServeModel, ModelStream, require_json_object


def is_transformer(model_class: type) -> bool:
    """Whether a user class is a transformer (defines ``preprocess``, not ``predict``)."""
    return callable(getattr(model_class, "preprocess", None)) and not callable(
        getattr(model_class, "predict", None)
    )


class PredictorError(UploadError):
    """The predictor behind a transformer failed or could not be reached: HTTP 502."""


@dataclass
class _RequestState:
    started: float
    destination: str | None
    generated: list[Any]


# preprocess() and postprocess() of one request run in the same task: its state rides here.
_request: contextvars.ContextVar[_RequestState | None] = contextvars.ContextVar(
    "kservehelper_transformer_request", default=None
)


class TransformerModel(KServeModel):
    """A :class:`KServeModel` whose user class is a transformer."""

    def check_predictor(self) -> None:
        """Fail at start-up, not on the first request, when no predictor is configured."""
        config = self.predictor_config
        if config is None or not config.predictor_host:
            raise SignatureError(
                f"{self.model_class.__name__} is a transformer (preprocess/postprocess): "
                "give the predictor it forwards to with --predictor-host HOST:PORT "
                "(KServe sets --predictor_host in an InferenceService)"
            )

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        signature = self.signatures["preprocess"]
        destination = self._destination_of(require_json_object(payload, signature), signature)
        kwargs = signature.validate(payload)
        state = _RequestState(time.perf_counter(), destination, outputs.track_outputs())
        _request.set(state)
        workdir = await self._materialize_files(signature, kwargs)
        try:
            result = await self._call("preprocess", **kwargs)
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        if not isinstance(result, dict):
            raise TypeError(
                f"preprocess() must return a dict (the predictor's request body), "
                f"returned {type(result).__name__}"
            )
        return result

    async def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            return await super(KServeModel, self).predict(payload, headers, response_headers)
        except httpx.HTTPStatusError as exc:
            raise PredictorError(
                f"the predictor answered {exc.response.status_code}: {exc.response.text[:500]}"
            ) from None
        except httpx.HTTPError as exc:
            host = self.predictor_config.predictor_host if self.predictor_config else "?"
            raise PredictorError(f"the predictor at {host} could not be reached: {exc}") from None

    async def postprocess(
        self,
        result: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | ModelStream:
        state = _request.get()
        if state is None:  # not through preprocess (e.g. KServe's V2 route): pass through
            return result
        signature = self.signatures["preprocess"]
        try:
            # postprocess(response) may name its parameter anything: pass it by position.
            output = await self._call("postprocess", result)
            response = await self._encode(signature, output, state.destination)
        finally:
            outputs.remove_files(state.generated)
        response = await self._after_predict(response)
        response["running_time"] = f"{time.perf_counter() - state.started:.6f}s"
        return response
