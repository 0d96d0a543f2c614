"""One prediction in this process, for ``kservehelper predict DIR -i name=value``.

No server and no Docker: the model is loaded, ``-i`` values are parsed by each input's type,
the request goes through the same validation as over HTTP, stream items are handed over as
they arrive, and output files are moved to a local folder.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
from collections.abc import AsyncIterator, Sequence
from contextlib import contextmanager
from typing import Any

from kservehelper.errors import InputError
from kservehelper.schema.signature import InputField, ModelSignature
from kservehelper.serving.model import KServeModel, ModelStream

STRING_TYPES = {"str", "Secret", "list[str]", "list[Secret]"}


def parse_cli_inputs(signature: ModelSignature, pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``name=value`` pairs into a request payload, parsing values by the input's type.

    ``value`` is kept as text for ``str`` inputs and parsed as JSON for the others
    (``3``, ``2.5``, ``true``, ``["a", "b"]``). ``@file`` reads a file: its path for ``Path``
    inputs, its base64 content for ``str`` inputs, its JSON text for the others. Repeating a
    list input (``-i tag=a -i tag=b``) collects the values.
    """
    payload: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InputError(
                f"-i {pair!r}: write inputs as name=value (or name=@file)",
                [{"loc": [pair], "msg": "expected name=value", "type": "cli_syntax"}],
            )
        field = signature.fields.get(name)
        value = _parse_value(field, name, raw)
        if field is not None and field.is_list and not isinstance(value, list):
            payload.setdefault(name, []).append(value)
        else:
            payload[name] = value
    return payload


def _parse_value(field: InputField | None, name: str, raw: str) -> Any:
    if raw.startswith("@"):
        path = pathlib.Path(raw[1:]).expanduser()
        if not path.is_file():
            raise InputError(
                f"invalid input {name!r}: no such file: {path}",
                [{"loc": [name], "msg": f"no such file: {path}", "type": "file_missing"}],
            )
        if field is not None and field.is_file:
            return str(path.resolve())
        if field is None or field.type_name in STRING_TYPES:
            return base64.b64encode(path.read_bytes()).decode()
        raw = path.read_text()
    if field is None or field.is_file or field.type_name in STRING_TYPES:
        if field is not None and field.is_file and "://" not in raw and not raw.startswith("data:"):
            return str(pathlib.Path(raw).expanduser().resolve())
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # validation reports the wrong type, as the server would


@contextmanager
def working_directory(folder: pathlib.Path) -> Any:
    """Run the model from its own folder, as it runs in its image (relative paths work)."""
    previous = pathlib.Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


async def run_local_prediction(
    model: KServeModel, method: str, payload: dict[str, Any]
) -> dict[str, Any] | AsyncIterator[Any]:
    """Run one request; a stream is returned as an async iterator of its items."""
    result = await model.run(method, payload)
    if isinstance(result, ModelStream):
        return _items(result)
    return result


async def _items(stream: ModelStream) -> AsyncIterator[Any]:
    try:
        async for item in stream.items():
            yield item
    finally:
        await stream.aclose()
