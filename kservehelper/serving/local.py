"""One prediction in this process, for ``kservehelper predict DIR -i name=value``.

No server and no Docker: the model is loaded, ``-i`` values are parsed by each input's type,
the request goes through the same validation as over HTTP, stream items are handed over as
they arrive, and output files are moved to a local folder.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator, Sequence
from contextlib import contextmanager
from typing import Any

from kservehelper.schema.cli_inputs import parse_cli_pairs
from kservehelper.schema.signature import ModelSignature
from kservehelper.serving.model import KServeModel, ModelStream


def parse_cli_inputs(signature: ModelSignature, pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``name=value`` pairs into a request payload, reading each value by its input's kind
    (:func:`kservehelper.schema.cli_inputs.parse_cli_pairs`).

    ``value`` is kept as text for ``str`` inputs and parsed as JSON for the others
    (``3``, ``2.5``, ``true``, ``["a", "b"]``). ``@file`` reads a file: its path for ``Path``
    inputs, its base64 content for ``str`` inputs, its JSON text for the others. Repeating a
    list input (``-i tag=a -i tag=b``) collects the values.
    """

    def type_name_of(name: str) -> str | None:
        field = signature.fields.get(name)
        return field.type_name if field is not None else None

    return parse_cli_pairs(pairs, type_name_of)


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
