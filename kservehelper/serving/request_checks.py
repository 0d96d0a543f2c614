"""What the pipeline checks about a served method and a request's body, before the model runs."""

from __future__ import annotations

import inspect
from typing import Any

from kservehelper.errors import InputError
from kservehelper.schema.signature import ModelSignature, OutputKind
from kservehelper.serving import outputs


def is_sync_method(model: Any, method: str) -> bool:
    """Whether the model's ``method`` is a plain function (run in a thread), not async."""
    function = getattr(model, method, None)
    return callable(function) and not (
        inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
    )


def may_return_files(model_class: type, signature: ModelSignature) -> bool:
    """Whether a method can return files: annotated so, or not annotated at all.

    Only such methods have their request's ``upload_webhook`` checked: kservehelper 2.0's
    clients send one with every request, also to methods returning plain values.
    """
    if signature.output_kind is not OutputKind.VALUE:
        return True
    method = "postprocess" if signature.method == "preprocess" else signature.method
    function = getattr(model_class, method, None)
    if function is None:
        return True
    try:
        annotation = inspect.signature(function).return_annotation
    except (TypeError, ValueError):
        return True
    return annotation is inspect.Signature.empty


def require_json_object(payload: Any, signature: ModelSignature) -> dict[str, Any]:
    """The request body, which must be a JSON object of named inputs (else HTTP 400)."""
    if not isinstance(payload, dict):
        example = next(iter(signature.fields), "input")
        raise InputError(
            f'the request body must be a JSON object of named inputs, e.g. {{"{example}": ...}}',
            [{"loc": [], "msg": "expected a JSON object", "type": "model_type"}],
        )
    return payload


def destination_of(body: dict[str, Any], default: str | None) -> str | None:
    """Where a request's output files go: its ``upload_webhook``, else the server's default."""
    requested = body.get("upload_webhook")
    if requested is not None and not isinstance(requested, str):
        raise webhook_error("must be a URL string", "string_type")
    if requested and outputs.is_local_destination(requested):
        # A client must not make the server write files into its own folders; a local
        # folder is the server operator's choice (upload_to).
        raise webhook_error(
            "a local folder is not accepted from a request; send an http(s) webhook URL, "
            "s3://bucket/prefix or gs://bucket/prefix",
            "local_destination_refused",
        )
    destination = requested or default
    if destination is not None:
        outputs.check_destination(destination)
    return destination


def webhook_error(message: str, kind: str) -> InputError:
    return InputError(
        f"invalid input 'upload_webhook': {message}",
        [{"loc": ["upload_webhook"], "msg": message, "type": kind}],
    )
