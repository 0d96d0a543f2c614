"""``kservehelper predict -i name=VALUE`` pairs → a request payload, each value read by its
input's kind (:mod:`.kinds`), the same way for a local model and for a built image.

Reads the files named with ``@FILE``; no HTTP, no kserve import.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kservehelper.errors import InputError
from kservehelper.schema.kinds import ANY, READ_JSON, CliReader, json_or_text, kind_of_type_name


def parse_cli_pairs(
    pairs: Iterable[str],
    type_name_of: Callable[[str], str | None],
    *,
    in_container: bool = False,
) -> dict[str, Any]:
    """Turn ``name=value`` pairs into a request payload, reading each value by its input's kind.

    ``type_name_of(name)`` gives an input's type name (``"list[Path]"``), or None for a name
    the model does not have (its value is read as JSON, else text; validation then names it).
    A list input (``list[...]``, ``list``, a batch) collects repeated ``-i`` values, and a
    value that is a JSON array gives several items at once (``-i 'tags=["a","b"]'``).
    """
    payload: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InputError(
                f"-i {pair!r}: write inputs as name=value (or name=@file)",
                [{"loc": [pair], "msg": "expected name=value", "type": "cli_syntax"}],
            )
        type_name = type_name_of(name)
        found = kind_of_type_name(type_name) if type_name else None
        kind, is_list = found if found is not None else (ANY, False)
        if is_list:
            payload.setdefault(name, []).extend(_list_items(kind.cli, name, raw, in_container))
        elif kind.is_array:
            value = _read(kind.cli, name, raw, in_container)
            items = payload.setdefault(name, [])
            items.extend(value) if isinstance(value, list) else items.append(value)
        else:
            payload[name] = _read(kind.cli, name, raw, in_container)
    return payload


def _list_items(reader: CliReader, name: str, raw: str, in_container: bool) -> list[Any]:
    """The items one ``-i`` gives a ``list[...]`` input: a JSON array's, else one."""
    if not raw.startswith("@") and raw.lstrip().startswith("["):
        value = json_or_text(raw)
        if isinstance(value, list):
            if reader is READ_JSON:
                return value
            # text and file items: strings are read as if given one by one
            return [
                reader.value(item, in_container) if isinstance(item, str) else item
                for item in value
            ]
    value = _read(reader, name, raw, in_container)
    return value if reader is READ_JSON and isinstance(value, list) else [value]


def _read(reader: CliReader, name: str, raw: str, in_container: bool) -> Any:
    path = pathlib.Path(raw[1:]).expanduser() if raw.startswith("@") else None
    try:
        if path is None:
            return reader.value(raw, in_container)
        if not path.is_file():
            raise FileNotFoundError(path)
        return reader.file(path, in_container)
    except FileNotFoundError as exc:
        missing = path or pathlib.Path(str(exc.args[0] if exc.args else raw))
        raise _cli_error(name, f"no such file: {missing}", "file_missing") from None
    except UnicodeDecodeError:
        message = f"{path} is not a text file; this input takes JSON (or text)"
        raise _cli_error(name, message, "file_not_text") from None
    except OSError as exc:
        message = f"cannot read {path or raw}: {exc.strerror}"
        raise _cli_error(name, message, "file_unreadable") from None


def _cli_error(name: str, message: str, kind: str) -> InputError:
    return InputError(
        f"invalid input {name!r}: {message}", [{"loc": [name], "msg": message, "type": kind}]
    )


def type_names_from_schema(schema: Mapping[str, Any]) -> Callable[[str], str | None]:
    """``type_name_of`` for :func:`parse_cli_pairs`, from a served model's schema document
    (``/v1/models/{name}/schema``: each input's ``x-kind``)."""
    properties = (schema.get("input") or {}).get("properties") or {}

    def type_name_of(name: str) -> str | None:
        kind = (properties.get(name) or {}).get("x-kind")
        return kind if isinstance(kind, str) else None

    return type_name_of
