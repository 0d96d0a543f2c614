"""The server's HTTP surface, and the one place errors become HTTP responses.

The surface is explicit:

* kservehelper's routes, registered ahead of KServe's for the models it serves: ``:predict``,
  ``:generate``, ``/schema``, ``/v1/docs``, ``/openapi.json``, liveness (``GET /v2/health/live``
  and ``GET /``);
* of the routes KServe registers, only the read-only ones in :data:`KSERVE_ROUTES` (health,
  readiness, metadata, metrics). KServe's model-repository routes (load/unload: unauthenticated,
  they take a model offline) stay only with ``KSERVEHELPER_ENABLE_MODEL_REPOSITORY=1``; V2
  ``infer`` (which would skip kservehelper's validation) answers 404.

Every 4xx/5xx body is ``{"error": str, "detail"?: [...], "type"?: str}``
(:func:`error_response`): from the routes, from Starlette/FastAPI (404, 405), from the request
guard (413, 408, unhandled errors, ``serving/guard.py``) and from the connection layer (400,
408, 431, 503, ``serving/connections.py``). 5xx bodies carry no memory address or server path,
and no body carries a request's ``Secret`` values (``serving/secrets.py``).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kservehelper.errors import (
    InputError,
    KServeHelperError,
    MethodNotAllowed,
    NotFound,
    NotReady,
    http_status_of,
)
from kservehelper.serving import kserve_compat, openapi, secrets, streaming
from kservehelper.serving.cancellation import serving_client
from kservehelper.serving.guard import RequestGuard
from kservehelper.serving.playground.routes import playground_routes
from kservehelper.serving.request_body import (
    Spool,
    read_body,
    restore_unclaimed,
    spool_data_uris,
    use_spool,
)
from kservehelper.settings import env_name, get_settings
from kservehelper.storage import policy

if TYPE_CHECKING:
    from kservehelper.serving.model import KServeModel

logger = logging.getLogger("kserve.kservehelper")

_JSON_TYPES = ("application/json", "application/cloudevents+json", "text/json")

#: The routes KServe registers that this server keeps: (path template, method). Read-only.
KSERVE_ROUTES = frozenset(
    {
        ("/metrics", "GET"),
        ("/v1/models", "GET"),
        ("/v1/models/{model_name}", "GET"),
        ("/v2", "GET"),
        ("/v2/health/ready", "GET"),
        ("/v2/models", "GET"),
        ("/v2/models/{model_name}", "GET"),
        ("/v2/models/{model_name}/ready", "GET"),
        ("/v2/models/{model_name}/versions/{model_version}", "GET"),
        ("/v2/models/{model_name}/versions/{model_version}/ready", "GET"),
        # KServe's Swagger UI, only there with its --enable_docs_url flag (it reads our
        # /openapi.json).
        ("/docs", "GET"),
        ("/docs/oauth2-redirect", "GET"),
    }
)
#: KServe's model-repository routes: kept only with KSERVEHELPER_ENABLE_MODEL_REPOSITORY=1.
KSERVE_REPOSITORY_ROUTES = frozenset(
    {
        ("/v2/repository/models/{model_name}/load", "POST"),
        ("/v2/repository/models/{model_name}/unload", "POST"),
    }
)


# -- responses --------------------------------------------------------------------------------


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        content=streaming.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])(?:/[\w.@+~-]+){2,}/?")


def without_server_details(message: str) -> str:
    """A 5xx message without memory addresses or absolute file paths of the server."""
    return _SERVER_PATH.sub("<path>", _ADDRESS.sub("0x…", message))


def error_response(exc: BaseException) -> Response:
    """Map an exception to its HTTP answer: the single place this happens.

    The status is a lookup (:func:`~kservehelper.errors.http_status_of`): kservehelper's errors
    carry theirs, a ``ValueError`` from the model's code is the model saying the input is wrong
    (400), anything else is a 500 (logged with its traceback, scrubbed of secrets).
    """
    status = http_status_of(exc)
    if isinstance(exc, KServeHelperError):
        body = exc.to_dict()
        if status >= 500 and status != 503:  # 503s (busy, draining) are the server working
            logger.error("request failed: %s", exc)
    elif status == 400:
        message = str(exc) or "the model rejected the input"
        body = {"error": message, "detail": [{"loc": [], "msg": message, "type": "value_error"}]}
    else:
        logger.error("prediction failed", exc_info=exc)
        body = {"error": f"{type(exc).__name__}: {exc}"}
    if status >= 500:
        body["error"] = without_server_details(str(body["error"]))
    headers = exc.response_headers() if isinstance(exc, KServeHelperError) else {}
    if status in (408, 413, 431):  # the rest of the request is not read: close the connection
        headers["Connection"] = "close"
    return json_response(secrets.scrub_json(body), status, headers)


async def framework_error(request: Request, exc: Exception) -> Response:
    """Starlette's and FastAPI's own errors (no such route, wrong method, invalid path
    parameters), in the error shape."""
    status = int(getattr(exc, "status_code", 400) or 400)
    target = f"{request.method} {request.url.path}"
    if status == 405:
        allow = str((getattr(exc, "headers", None) or {}).get("Allow", ""))
        return error_response(
            MethodNotAllowed(f"{target} is not allowed; this route takes {allow}", allow)
        )
    if status == 404:
        return error_response(
            NotFound(f"no route {target}; GET /openapi.json lists this server's routes")
        )
    detail: list[dict[str, Any]] = list(getattr(exc, "errors", lambda: [])())
    problems = [
        {"loc": list(item.get("loc", [])), "msg": str(item.get("msg", "")),
         "type": str(item.get("type", "invalid"))}
        for item in detail
    ]  # fmt: skip
    message = str(getattr(exc, "detail", "") or "invalid request")
    return json_response({"error": f"{target}: {message}", "detail": problems}, status)


def decode_body(body: bytes | bytearray, content_type: str | None) -> Any:
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


# -- models -----------------------------------------------------------------------------------


def _served(models: Mapping[str, KServeModel], name: str) -> KServeModel:
    model = models.get(name)
    if model is None:
        served = ", ".join(sorted(models)) or "none"
        raise NotFound(f"model {name!r} is not served here; served models: {served}")
    return model


def _ready(models: Mapping[str, KServeModel], name: str) -> KServeModel:
    model = _served(models, name)
    if not model.ready:
        raise NotReady(f"model {name!r} is not ready")
    return model


def _fields(model: KServeModel) -> Iterable[Any]:
    for signature in model.signatures.values():
        yield from signature.fields.values()


def _file_fields(model: KServeModel) -> set[str]:
    return {field.name for field in _fields(model) if field.is_file}


def liveness(models: Mapping[str, KServeModel]) -> Response:
    """``{"status": "alive"}``, or 503 naming the served models that are not loaded (after an
    unload, or a load that never finished): the liveness probe restarts such a server."""
    down = sorted(name for name, model in models.items() if not model.ready)
    if down:
        return json_response({"error": f"model(s) not loaded: {', '.join(down)}"}, 503)
    return json_response({"status": "alive"})


# -- routes -----------------------------------------------------------------------------------


def install_routes(app: FastAPI, models: Mapping[str, KServeModel]) -> None:
    """Serve ``models`` through kservehelper's routes on ``app``, ahead of KServe's own.

    The routes, the request guard and the error handlers are added once per app; later calls
    (one per model, or one per worker process of a multi-process server) add their models to
    the same registry. Raises :class:`~kservehelper.errors.ConfigError` for invalid
    settings (a malformed allow-list entry, an unusable upload destination).
    """
    policy.check_settings()
    for model in models.values():
        policy.trust_operator_destination(getattr(model, "upload_to", None))
        secrets.add_standing(secrets.secret_defaults(_fields(model)))
    secrets.add_standing([get_settings().upload_token])
    secrets.install_log_scrubber()
    registry: dict[str, KServeModel] | None = getattr(app.state, "kservehelper_models", None)
    if registry is not None:
        registry.update(models)
        return
    registry = dict(models)
    app.state.kservehelper_models = registry
    _add_routes(app, registry)
    kserve_compat.restrict_routes(app, _keep_route)
    kserve_compat.set_error_handlers(app, framework_error, error_response)
    kserve_compat.add_middleware(app, RequestGuard, error_response=error_response)


def _keep_route(route: BaseRoute) -> bool:
    """Whether a route stays: every route but KServe's (and FastAPI's own ``/openapi.json``)
    outside :data:`KSERVE_ROUTES`."""
    if not kserve_compat.is_framework_route(route):
        return True
    path, methods = kserve_compat.route_signature(route)
    kept = KSERVE_ROUTES
    if get_settings().enable_model_repository:
        kept = kept | KSERVE_REPOSITORY_ROUTES
    return any((path, method) in kept for method in methods)


def _add_routes(app: FastAPI, models: Mapping[str, KServeModel]) -> None:
    # Plain Starlette routes, not FastAPI's: FastAPI would solve each handler's parameters as
    # dependencies on every request (and build their models at start-up), work these handlers
    # do not need; ~30 ms of start-up and part of each request's cost (docs/benchmarks.md).
    async def handle(method: str, model_name: str, request: Request) -> Response:
        cleanup = contextlib.ExitStack()  # the request's spooled files and secrets
        spool = Spool()
        cleanup.callback(spool.remove)
        streamed = False
        try:
            found = _ready(models, model_name)
            body = await read_body(request, get_settings().max_request_bytes)
            spool_data_uris(body, spool)
            payload = decode_body(body, request.headers.get("content-type"))
            del body
            payload = restore_unclaimed(payload, _file_fields(found), spool)
            cleanup.enter_context(secrets.request_secrets(secrets.sent(_fields(found), payload)))
            use_spool(spool)
            serving_client(request.receive)  # the pipeline drops the work if the client leaves
            headers = dict(request.headers.items())
            if method == "predict":
                # Through kserve.Model.__call__: KServe's metrics and latency logging apply.
                result, _ = await found(payload, headers=headers)
            else:
                result = await found.generate(payload, headers)
            if isinstance(result, dict):
                return _dict_response(method, result)
            response = streaming.stream_response(
                result, _wants_sse(request), secrets.scrub_bytes, cleanup.close
            )
            streamed = True  # the response closes the stream, then the cleanup
            return response
        except Exception as exc:
            return error_response(exc)
        finally:
            if not streamed:
                cleanup.close()

    async def predict(request: Request) -> Response:
        return await handle("predict", request.path_params["model_name"], request)

    async def generate(request: Request) -> Response:
        return await handle("generate", request.path_params["model_name"], request)

    async def schema(request: Request) -> Response:
        try:
            document = _served(models, request.path_params["model_name"]).schema()
        except NotFound as exc:
            return error_response(exc)
        return json_response(secrets.scrub_json(document))

    async def docs(request: Request) -> Response:
        try:
            document = secrets.mask_docs(_served(models, request.path_params["model_name"]).docs())
        except NotFound as exc:
            return error_response(exc)
        return json_response(secrets.scrub_json(document))

    async def openapi_json(request: Request) -> Response:
        repository = get_settings().enable_model_repository
        document = openapi.openapi_document(models, repository_routes=repository)
        return json_response(secrets.scrub_json(document))

    async def live(request: Request) -> Response:
        return liveness(models)

    async def no_v2_infer(request: Request) -> Response:
        model_name = request.path_params["model_name"]
        return error_response(
            NotFound(
                f"the V2 inference protocol is not served; send the inputs as a JSON object to "
                f"POST /v1/models/{model_name}:predict (GET /openapi.json describes them)"
            )
        )

    async def no_explain(request: Request) -> Response:
        return error_response(NotFound("explanations (:explain) are not served by this server"))

    async def post_only(request: Request) -> Response:
        # Without this, KServe's GET /v1/models/{model_name} would answer for "NAME:predict".
        return error_response(
            MethodNotAllowed(f"{request.method} {request.url.path} is not allowed; this route "
                             "takes POST", "POST")
        )  # fmt: skip

    async def repository_disabled(request: Request) -> Response:
        return error_response(
            NotFound(
                "KServe's model-repository routes are disabled on this server; "
                f"set {env_name('enable_model_repository')}=1 to serve them"
            )
        )

    routes: list[BaseRoute] = [
        Route("/v1/models/{model_name}:predict", predict, methods=["POST"]),
        Route("/v1/models/{model_name}:generate", generate, methods=["POST"]),
    ]
    for verb in ("predict", "generate", "explain"):
        routes.append(Route(f"/v1/models/{{model_name}}:{verb}", post_only, methods=["GET"]))
    routes += [
        Route("/v1/models/{model_name}/schema", schema, methods=["GET"]),
        Route("/v1/docs/{model_name}", docs, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        *playground_routes(models),  # GET / for browsers comes before liveness
        Route("/", live, methods=["GET"]),
        Route("/v2/models/{model_name}/infer", no_v2_infer, methods=["POST"]),
        Route(
            "/v2/models/{model_name}/versions/{model_version}/infer",
            no_v2_infer,
            methods=["POST"],
        ),
        Route("/v1/models/{model_name}:explain", no_explain, methods=["POST"]),
    ]
    if not get_settings().enable_model_repository:
        for action in ("load", "unload"):
            path = f"/v2/repository/models/{{model_name}}/{action}"
            routes.append(Route(path, repository_disabled, methods=["POST"]))
    kserve_compat.insert_routes_first(app, routes)


def _dict_response(method: str, result: dict[str, Any]) -> Response:
    try:
        return json_response(result)
    except TypeError as exc:
        return error_response(
            TypeError(f"{method}() returned a value that cannot be sent as JSON: {exc}")
        )
