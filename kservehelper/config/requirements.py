"""Requirements files and the files they include (``-r``/``-c``), as pip would follow them.

pip reads ``-r other.txt`` and ``-c constraints.txt`` relative to the including file. Every
such file must be inside the model folder (it is staged into the build context with the same
layout, so the relative references still hold in the image); a missing or outside file is a
:class:`~kservehelper.errors.ConfigError` naming the including file and line.
"""

from __future__ import annotations

import os
import pathlib
import re

from kservehelper.errors import ConfigError

# -r FILE, -rFILE, --requirement FILE, --requirement=FILE (and the same for -c/--constraint).
_INCLUDE = re.compile(r"(?:-[rc]\s*|--(?:requirement|constraint)(?:\s*=\s*|\s+))(?P<path>\S+)")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) with comments removed and ``\\``-continued lines joined."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append((start, (pending + line).strip()))
        pending = ""
    if pending:
        lines.append((start, pending.strip()))
    return lines


def included_files(path: pathlib.Path) -> list[tuple[int, str]]:
    """The local files ``path`` includes with -r/-c: (line number, path as written)."""
    found = []
    for number, line in _logical_lines(path.read_text(encoding="utf-8", errors="replace")):
        match = _INCLUDE.match(line)
        if match and "://" not in match.group("path"):
            found.append((number, match.group("path")))
    return found


def requirement_files(model_dir: pathlib.Path, top_level: list[str]) -> list[str]:
    """``top_level`` requirements files and every file they include, recursively, as
    '/'-paths relative to ``model_dir`` (top-level files first, each once)."""
    root = model_dir.resolve()
    ordered: list[str] = []
    # Paths as pip opens them (not resolved: a symlinked file's includes are relative to the
    # link's folder); each is checked to resolve inside the folder.
    pending = [pathlib.Path(os.path.normpath(root / name)) for name in top_level]
    while pending:
        current = pending.pop(0)
        relative = current.relative_to(root).as_posix()
        if relative in ordered:
            continue
        ordered.append(relative)
        for number, written in included_files(current):
            target = pathlib.Path(os.path.normpath(current.parent / written))
            where = f"{current}:{number}"
            if not target.is_relative_to(root) or not target.resolve().is_relative_to(root):
                raise ConfigError(
                    f"{where}: '{written}' is outside the model folder {root}; move it into "
                    "the folder (only the folder is copied into the image)"
                )
            if not target.is_file():
                raise ConfigError(f"{where}: '{written}' does not exist; fix the path")
            pending.append(target)
    return ordered
