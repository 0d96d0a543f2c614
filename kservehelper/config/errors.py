"""Turning config.yaml mistakes into ``file:line: key: message`` lines a user can act on."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import yaml


def line_of(text: str, loc: Sequence[Any]) -> int:
    """The 1-based line of the deepest key of ``loc`` that exists in the YAML text."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return 1
    line = 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == str(part)), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def unknown_key_hint(key: str, known: Sequence[str]) -> str:
    """``did you mean 'x'?`` for a close match among ``known``, else the list of known keys."""
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
