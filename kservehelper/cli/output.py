"""Printing a prediction's answer: one way for local ``predict`` and ``predict --image``.

A JSON answer is printed indented; each stream item on one compact line, as it arrives. Output
files are already local paths by then (moved into ``-o``, or copied out of the container).
"""

from __future__ import annotations

import json
from typing import Any

import typer


def format_result(result: Any) -> str:
    """A JSON answer as printed: indented, non-ASCII kept."""
    return json.dumps(result, indent=2, ensure_ascii=False, default=str)


def format_stream_item(item: Any) -> str:
    """One stream item as printed: compact JSON on one line."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False, default=str)


def print_result(result: Any) -> None:
    """Print a JSON answer on stdout."""
    typer.echo(format_result(result))


def print_stream_item(item: Any) -> None:
    """Print one stream item on stdout, as it arrives."""
    typer.echo(format_stream_item(item))
