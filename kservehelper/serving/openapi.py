"""``GET /openapi.json``: the server's HTTP surface as an OpenAPI 3.1 document.

Each served model's routes are written out with the model's real input schema (the one requests
are validated against), so OpenAPI clients and test generators (schemathesis) can drive them.
Every error is documented in the one shape the server answers with.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kservehelper import __version__
from kservehelper.schema.signature import OutputKind, main_signature

if TYPE_CHECKING:
    from kservehelper.schema.signature import ModelSignature

JSON = "application/json"
ERROR_REF = {"$ref": "#/components/schemas/Error"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every 4xx/5xx answer. `detail` lists each problem with a request input.",
    "properties": {
        "error": {"type": "string"},
        "type": {
            "type": "string",
            "description": "The kind of failure, for a program to act on: UploadError, "
            "ServerBusy, ShuttingDown, DeadlineExceeded, ...",
        },
        "retry_after": {
            "type": "integer",
            "description": "With a 503: seconds to wait before retrying (also `Retry-After`).",
        },
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
                "required": ["loc", "msg", "type"],
            },
        },
    },
    "required": ["error"],
    "additionalProperties": False,
}

UPLOAD_WEBHOOK = {
    "type": ["string", "null"],
    "description": "Where this request's output files go (a webhook URL, s3://bucket/prefix, "
    "gs://bucket/prefix); subject to the server's outbound policy.",
}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid input (each problem in `detail`)",
        404: "No such model or route",
        408: "The request body stalled",
        413: "The request body is too large",
        500: "The model failed",
        502: "An output file could not be delivered",
        503: "The model is not ready, or the server is busy",
    }
    answers = {
        str(status): {
            "description": reasons[status],
            "content": {JSON: {"schema": ERROR_REF}},
        }
        for status in statuses
    }
    answers["default"] = {
        "description": "Any other error",
        "content": {JSON: {"schema": ERROR_REF}},
    }
    return answers


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema or {}}}}


def _output(signature: ModelSignature) -> dict[str, Any]:
    kind = signature.output_kind
    if kind is OutputKind.STREAM:
        record = {"type": "string", "description": 'One record per line: {"id": i, "data": ...}'}
        return {
            "description": "The items, streamed as they are produced",
            "content": {
                "application/x-ndjson": {"schema": record},
                "text/event-stream": {"schema": record},
            },
        }
    if kind in (OutputKind.FILE, OutputKind.FILES):
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "output": {"type": "array", "items": {"type": "string"}},
                "running_time": {"type": "string"},
            },
            "required": ["output"],
        }
        return _json("The output files' URLs", schema)
    return _json(
        "The model's output: a dict as returned, any other value as "
        '{"output": value}; "running_time" added',
        {"type": "object"},
    )


def _request_schema(signature: ModelSignature) -> dict[str, Any]:
    schema = copy.deepcopy(signature.json_schema())
    schema.setdefault("properties", {})["upload_webhook"] = dict(UPLOAD_WEBHOOK)
    return schema


def _hoist_defs(schema: dict[str, Any], prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """Move ``$defs`` into ``components.schemas`` (OpenAPI refs point there)."""
    definitions = schema.pop("$defs", {})
    if not definitions:
        return schema
    for name, definition in definitions.items():
        components[f"{prefix}{name}"] = definition
    text = _rewrite_refs(schema, prefix)
    for name in definitions:
        components[f"{prefix}{name}"] = _rewrite_refs(components[f"{prefix}{name}"], prefix)
    return text


def _rewrite_refs(value: Any, prefix: str) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                item.replace("#/$defs/", f"#/components/schemas/{prefix}")
                if key == "$ref" and isinstance(item, str)
                else _rewrite_refs(item, prefix)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rewrite_refs(item, prefix) for item in value]
    return value


def _model_paths(name: str, model: Any, components: dict[str, Any]) -> dict[str, Any]:
    signatures: dict[str, ModelSignature] = model.signatures
    paths: dict[str, Any] = {}
    for method, signature in signatures.items():
        verb = "predict" if method == "preprocess" else method
        schema_name = f"{_component_name(name)}{verb.capitalize()}Input"
        components[schema_name] = _hoist_defs(_request_schema(signature), schema_name, components)
        paths[f"/v1/models/{name}:{verb}"] = {
            "post": {
                "operationId": f"{_component_name(name)}_{verb}",
                "summary": f"Run {name}'s {method}()",
                "tags": [name],
                "requestBody": {
                    # An empty body is {}: every input takes its default.
                    "required": any(field.required for field in signature.fields.values()),
                    "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
                },
                "responses": {"200": _output(signature), **_errors(400, 413, 500, 502, 503)},
            }
        }
    main = main_signature(signatures)
    paths[f"/v1/models/{name}/schema"] = _get(
        f"{_component_name(name)}_schema", f"{name}'s inputs and outputs", name,
        _json("The model's input JSON schema and output kinds", {"type": "object"}),
    )  # fmt: skip
    paths[f"/v1/docs/{name}"] = _get(
        f"{_component_name(name)}_docs", f"{name}'s input descriptions", name,
        _json("Each input's type, description, default and constraints",
              {"type": "object", "properties": {field: {"type": "object"}
                                                 for field in main.fields}}),
    )  # fmt: skip
    paths[f"/v1/models/{name}"] = _get(
        f"{_component_name(name)}_ready", f"Whether {name} is ready", name,
        _json("Readiness", {"type": "object"}), errors=(404, 503),
    )  # fmt: skip
    return paths


def _component_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-") if part) or "M"


def _get(
    operation: str,
    summary: str,
    tag: str,
    ok: dict[str, Any],
    errors: tuple[int, ...] = (404,),
) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "tags": [tag],
            "responses": {"200": ok, **_errors(*errors)},
        }
    }


def server_paths(repository_routes: bool) -> dict[str, Any]:
    """The routes that are not per model."""
    paths: dict[str, Any] = {
        "/v2/health/live": _get(
            "live", "Liveness: fails (503) while a served model is not loaded", "server",
            _json("Alive", {"type": "object"}), errors=(503,),
        ),
        "/v2/health/ready": _get("ready", "Readiness", "server", _json("Ready",
                                 {"type": "object"}), errors=(503,)),
        "/v1/models": _get("models", "The models served", "server",
                           _json("Model names", {"type": "object"})),
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics",
                             "tags": ["server"], "responses": {"200": {
                                 "description": "Metrics", "content": {"text/plain": {}}}}}},
    }  # fmt: skip
    if repository_routes:
        for action in ("load", "unload"):
            paths[f"/v2/repository/models/{{model_name}}/{action}"] = {
                "post": {
                    "operationId": f"repository_{action}",
                    "summary": f"KServe's model repository: {action} a model "
                    "(KSERVEHELPER_ENABLE_MODEL_REPOSITORY=1)",
                    "tags": ["server"],
                    "parameters": [
                        {
                            "name": "model_name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": _json("Done"), **_errors(404, 503)},
                }
            }
    return paths


def openapi_document(models: Mapping[str, Any], *, repository_routes: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this server, for ``models`` (name → ``KServeModel``)."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for name in sorted(models):
        paths.update(_model_paths(name, models[name], components))
    paths.update(server_paths(repository_routes))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kservehelper model server",
            "version": __version__,
            "description": "Models served with kservehelper on KServe. Errors always answer "
            '{"error": "...", "detail": [...]}.',
        },
        "paths": paths,
        "components": {"schemas": components},
    }
