"""HTTP routes on KServe's FastAPI app, and the one place errors become HTTP responses.

KServe's V1 ``:predict`` route decodes and answers on its own terms; ours are registered in
front of it for the models kservehelper serves, so every request gets the same validation,
error bodies and streaming framing. KServe keeps everything else (health, readiness, metrics,
model repository, V2).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from kservehelper.errors import InputError, KServeHelperError
from kservehelper.serving import streaming
from kservehelper.serving.cancellation import serving_client
from kservehelper.serving.kserve_compat import insert_routes_first
from kservehelper.serving.playground.routes import playground_routes

if TYPE_CHECKING:
    from kservehelper.serving.model import KServeModel

logger = logging.getLogger("kserve.kservehelper")

_JSON_TYPES = ("application/json", "application/cloudevents+json", "text/json")


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        content=streaming.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def error_response(exc: BaseException) -> Response:
    """Map an exception to its HTTP answer: the single place this happens.

    kservehelper's own errors carry their status (``http_status``); a ``ValueError`` from the
    model's code is the model saying the input is wrong (400); anything else is a 500.
    """
    if isinstance(exc, KServeHelperError):
        if exc.http_status >= 500 and exc.http_status != 503:
            logger.error("request failed: %s", exc)
        return json_response(exc.to_dict(), exc.http_status, exc.response_headers())
    if isinstance(exc, ValueError):
        message = str(exc) or "the model rejected the input"
        detail = [{"loc": [], "msg": message, "type": "value_error"}]
        return json_response({"error": message, "detail": detail}, 400)
    logger.error("prediction failed", exc_info=exc)
    return json_response({"error": f"{type(exc).__name__}: {exc}", "type": type(exc).__name__}, 500)


def decode_body(body: bytes, content_type: str | None) -> Any:
    """Parse a request body as JSON, whatever its ``Content-Type`` says.

    kservehelper 2.0's clients send JSON with no content type, as ``text/plain``, or as
    ``application/x-www-form-urlencoded`` (``curl URL -d @input.json``): a body that parses
    as JSON is accepted. Only a body that is not JSON is refused (400), with how to send it.
    """
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        media_type = (content_type or "").split(";")[0].strip().lower()
        sent = f" (sent as {media_type})" if media_type and media_type not in _JSON_TYPES else ""
        raise InputError(
            f"the request body is not valid JSON{sent}: {exc}. Send a JSON object of inputs, "
            """e.g. curl -H 'Content-Type: application/json' -d '{"name": "value"}'""",
            [{"loc": [], "msg": str(exc), "type": "json_invalid"}],
        ) from None


def _wants_sse(request: Request) -> bool:
    return streaming.EVENT_STREAM in request.headers.get("accept", "")


def _model_or_error(models: Mapping[str, KServeModel], name: str) -> KServeModel | Response:
    model = models.get(name)
    if model is None:
        served = ", ".join(sorted(models)) or "none"
        return json_response(
            {"error": f"model {name!r} is not served here; served models: {served}"}, 404
        )
    if not model.ready:
        return json_response({"error": f"model {name!r} is not ready yet"}, 503)
    return model


def install_routes(app: FastAPI, models: Mapping[str, KServeModel]) -> None:
    """Serve ``models`` through kservehelper's routes on ``app``, ahead of KServe's own.

    The routes are added once per app; later calls (one per model, or one per worker process
    of a multi-process server) add their models to the same registry.
    """
    registry: dict[str, KServeModel] | None = getattr(app.state, "kservehelper_models", None)
    if registry is not None:
        registry.update(models)
        return
    registry = dict(models)
    app.state.kservehelper_models = registry
    _add_routes(app, registry)


def _add_routes(app: FastAPI, models: Mapping[str, KServeModel]) -> None:
    router = APIRouter()

    async def handle(method: str, model_name: str, request: Request) -> Response:
        found = _model_or_error(models, model_name)
        if isinstance(found, Response):
            return found
        headers = dict(request.headers.items())
        try:
            payload = decode_body(await request.body(), request.headers.get("content-type"))
            serving_client(request.receive)  # the pipeline drops the work if the client leaves
            if method == "predict":
                # Through kserve.Model.__call__: KServe's metrics and latency logging apply.
                result, _ = await found(payload, headers=headers)
            else:
                result = await found.generate(payload, headers)
        except Exception as exc:
            return error_response(exc)
        if isinstance(result, dict):
            try:
                return json_response(result)
            except TypeError as exc:
                return error_response(
                    TypeError(f"{method}() returned a value that cannot be sent as JSON: {exc}")
                )
        return streaming.stream_response(result, _wants_sse(request))

    async def predict(model_name: str, request: Request) -> Response:
        return await handle("predict", model_name, request)

    async def generate(model_name: str, request: Request) -> Response:
        return await handle("generate", model_name, request)

    async def schema(model_name: str) -> Response:
        found = models.get(model_name)
        if found is None:
            return json_response({"error": f"model {model_name!r} is not served here"}, 404)
        return json_response(found.schema())

    async def docs(model_name: str) -> Response:
        found = models.get(model_name)
        if found is None:
            return json_response({"error": f"model {model_name!r} is not served here"}, 404)
        return json_response(found.docs())

    router.add_api_route("/v1/models/{model_name}:predict", predict, methods=["POST"])
    router.add_api_route("/v1/models/{model_name}:generate", generate, methods=["POST"])
    router.add_api_route("/v1/models/{model_name}/schema", schema, methods=["GET"])
    router.add_api_route("/v1/docs/{model_name}", docs, methods=["GET"])
    router.routes.extend(playground_routes(models))
    insert_routes_first(app, router.routes)
