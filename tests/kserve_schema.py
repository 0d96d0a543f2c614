"""The InferenceService's JSON schema, derived from the installed kserve package.

kserve ships the OpenAPI models of its API (``kserve.models``: ``openapi_types`` and
``attribute_map`` per class, generated from the same Go types as its CRD), built on the
Kubernetes client's models (``kubernetes.client.models``). Walking them from
``V1beta1InferenceService`` gives a strict schema of what the API server keeps: every field
with its type, no unknown field (the API server would prune it silently), required fields (the
setters that refuse None) and enums (the values the setters' docs list). No file outside the
repository is read, so the deploy tests run in a fresh clone.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

import kserve.models
import kubernetes.client.models

_SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "object": {},  # IntOrString and free-form fields
    "datetime": {"type": "string"},
    "date": {"type": "string"},
    "bytes": {"type": "string"},
    # resource.Quantity: a string, or an integer in YAML/JSON.
    "ResourceQuantity": {"type": ["string", "integer"]},
}
# kserve's generator writes list[X] and dict(str, X); the Kubernetes client's List[X], Dict[str, X].
_LIST = re.compile(r"[lL]ist\[(.+)\]")
_DICT = re.compile(r"dict\(str, (.+)\)|Dict\[str, (.+)\]")
_ENUM = re.compile(r"possible values are ([a-zA-Z, ]+?)\.")
_REQUIRED = "must not be `None`"


# kserve names some Kubernetes types by their Go package (K8sIoApiAppsV1DeploymentStrategy);
# the Kubernetes client by version and name (V1DeploymentStrategy).
_GO_PACKAGE = re.compile(r"K8sIoApi[A-Z][a-z]+(V\d+(?:(?:alpha|beta)\d+)?)([A-Z]\w*)")


def _model_class(name: str) -> type | None:
    candidates = [name]
    if match := _GO_PACKAGE.fullmatch(name):
        candidates.append(match.group(1) + match.group(2))
    for candidate in candidates:
        for module in (kserve.models, kubernetes.client.models):
            if hasattr(module, candidate):
                return getattr(module, candidate)  # type: ignore[no-any-return]
    return None


def _type_schema(type_name: str, definitions: dict[str, Any]) -> dict[str, Any]:
    if type_name in _SCALARS:
        return dict(_SCALARS[type_name])
    if match := _LIST.fullmatch(type_name):
        return {"type": "array", "items": _type_schema(match.group(1), definitions)}
    if match := _DICT.fullmatch(type_name):
        return {
            "type": "object",
            "additionalProperties": _type_schema(match.group(1) or match.group(2), definitions),
        }
    _define(type_name, definitions)
    return {"$ref": f"#/definitions/{type_name}"}


def _define(name: str, definitions: dict[str, Any]) -> None:
    if name in definitions:
        return
    definitions[name] = {}  # placeholder: models refer to each other; {} accepts anything
    cls = _model_class(name)
    if cls is None:
        return  # a type neither package models (none of the fields kservehelper writes)
    properties: dict[str, Any] = {}
    required: list[str] = []
    # kserve's models are classic generated classes (a property per field, whose setter
    # refuses None when the field is required); the Kubernetes client's are pydantic models.
    fields = {
        field.serialization_alias or name: field
        for name, field in getattr(cls, "model_fields", {}).items()
    }
    for attribute, type_name in cls.openapi_types.items():  # type: ignore[attr-defined]
        schema = _type_schema(type_name, definitions)
        key = cls.attribute_map[attribute]  # type: ignore[attr-defined]
        if fields:
            is_required = fields[key].is_required()
        else:
            setter = getattr(cls, attribute).fset
            is_required = _REQUIRED in inspect.getsource(setter)
            enum = _ENUM.search(inspect.getdoc(setter) or "")
            if enum and schema.get("type") == "string":
                schema["enum"] = [value.strip() for value in enum.group(1).split(",")]
        if is_required:
            required.append(key)
        properties[key] = schema
    definition: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        definition["required"] = required
    definitions[name] = definition


@functools.cache
def inference_service_schema() -> dict[str, Any]:
    """A JSON schema (draft 7) of ``serving.kserve.io/v1beta1`` InferenceService."""
    definitions: dict[str, Any] = {}
    _define("V1beta1InferenceService", definitions)
    root = dict(definitions["V1beta1InferenceService"])
    root["definitions"] = definitions
    return root
