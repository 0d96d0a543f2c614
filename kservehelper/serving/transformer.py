"""Transformers: a model class with ``preprocess(...)`` and ``postprocess(response)`` instead
of ``predict``, served in front of a separate predictor (KServe's ``--predictor_host``).

``preprocess``'s parameters are validated exactly like ``predict``'s; its return value (a
dict) is sent to the predictor's ``/v1/models/{name}:predict``; the predictor's answer goes to
``postprocess``, whose result is encoded like a ``predict`` result (files delivered as URLs,
``after_predict``, ``"running_time"``).

A request is one :class:`~kservehelper.serving.pipeline.Request` from ``preprocess`` to the
answer; KServe's ``Model.__call__`` still runs the three steps (and times them for its
metrics). The user's code holds a slot while it runs (``preprocess``, then ``postprocess``),
not while the predictor works. The predictor has ``KSERVEHELPER_PREDICTOR_TIMEOUT`` seconds to
answer (then 504), and the transformer is ready only while its predictor answers.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from typing import Any

import httpx
from kserve.model import InferenceVerb
from kserve.protocol.infer_type import InferRequest

from kservehelper.errors import DeadlineExceeded, SignatureError, UploadError
from kservehelper.serving.model import KServeModel, ModelStream
from kservehelper.serving.pipeline import Request
from kservehelper.settings import env_name, get_settings

logger = logging.getLogger("kserve.kservehelper")

PROBE_TIMEOUT = 2.0
"""Seconds the predictor gets to answer a readiness check (Kubernetes' probe allows 5)."""


def is_transformer(model_class: type) -> bool:
    """Whether a user class is a transformer (defines ``preprocess``, not ``predict``)."""
    return callable(getattr(model_class, "preprocess", None)) and not callable(
        getattr(model_class, "predict", None)
    )


class PredictorError(UploadError):
    """The predictor behind a transformer failed or could not be reached: HTTP 502."""


class PredictorTimeout(DeadlineExceeded):
    """The predictor did not answer within ``KSERVEHELPER_PREDICTOR_TIMEOUT``: HTTP 504."""


# preprocess(), predict() and postprocess() of one request run in the same task: the request
# and when it started.
_request: contextvars.ContextVar[tuple[Request, float] | None] = contextvars.ContextVar(
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

    async def __call__(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
    ) -> Any:
        if isinstance(body, InferRequest):  # KServe's V2 route: KServe's own pass-through
            return await super().__call__(body, headers, verb)
        signature = self.pipeline.signature("preprocess")
        async with self.pipeline.request(signature) as request:
            _request.set((request, time.perf_counter()))
            return await super().__call__(body, headers, verb)

    async def healthy(self) -> bool:
        """Ready: loaded, not shutting down, and the predictor answers its readiness check."""
        if not await super().healthy():
            return False
        return await self._predictor_ready()

    async def _predictor_ready(self) -> bool:
        config = self.predictor_config
        if config is None or not config.predictor_host or config.protocol == "grpc-v2":
            return True  # gRPC predictors: KServe's own --enable_predictor_health_check
        base = config.predictor_base_url
        v2 = config.protocol == "v2"
        path = f"/v2/models/{self.name}/ready" if v2 else f"/v1/models/{self.name}"
        verify: Any = os.environ.get("REQUESTS_CA_BUNDLE") or True
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, verify=verify) as client:
                response = await client.get(base + path)
        except httpx.HTTPError as exc:
            logger.warning("not ready: the predictor at %s does not answer: %r", base, exc)
            return False
        if response.status_code != 200:
            logger.warning("not ready: the predictor answers %d", response.status_code)
            return False
        return True

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        current = _request.get()
        if current is not None:
            return await self._preprocess(current[0], payload)
        # Called directly, not through a served request.
        async with self.pipeline.request(self.pipeline.signature("preprocess")) as request:
            return await self._preprocess(request, payload)

    async def _preprocess(self, request: Request, payload: Any) -> Any:
        kwargs = request.validate(payload)
        await request.take_slot()
        await request.fetch_inputs(kwargs)
        result = await request.call("preprocess", **kwargs)
        request.release_slot()
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
        current = _request.get()
        timeout = get_settings().predictor_timeout
        host = self.predictor_config.predictor_host if self.predictor_config else "?"
        forward = super(KServeModel, self).predict(payload, headers, response_headers)
        try:
            if current is None:
                return await asyncio.wait_for(forward, timeout)
            request = current[0]
            request.stage = "predictor"
            async with request.cancellation.section():
                return await asyncio.wait_for(forward, timeout)
        except asyncio.TimeoutError:
            raise PredictorTimeout(
                f"the predictor at {host} did not answer within {timeout:g}s "
                f"({env_name('predictor_timeout')})"
            ) from None
        except httpx.HTTPStatusError as exc:
            raise PredictorError(
                f"the predictor answered {exc.response.status_code}: {exc.response.text[:500]}"
            ) from None
        except httpx.HTTPError as exc:
            raise PredictorError(f"the predictor at {host} could not be reached: {exc}") from None

    async def postprocess(
        self,
        result: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | ModelStream:
        current = _request.get()
        if current is not None:
            return await self._postprocess(current[0], result, current[1])
        # Called directly, not through a served request.
        async with self.pipeline.request(self.pipeline.signature("preprocess")) as request:
            return await self._postprocess(request, result, time.perf_counter())

    async def _postprocess(self, request: Request, result: Any, started: float) -> dict[str, Any]:
        await request.take_slot()
        # postprocess(response) may name its parameter anything: pass it by position.
        output = await request.call("postprocess", result)
        request.release_slot()
        response = await request.respond(output)
        response["running_time"] = f"{time.perf_counter() - started:.6f}s"
        return response
