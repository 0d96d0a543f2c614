"""What of a model folder goes into the image: ``.dockerignore`` semantics and the defaults.

Docker's rules (Go ``filepath.Match`` plus ``**``; a pattern matching a folder excludes what is
beneath it; the last matching line wins; ``!`` re-includes). On top of the folder's own
``.dockerignore`` (or kservehelper's default, templates/dockerignore), files that look like keys
or credentials are always excluded unless a ``!`` line re-includes them.
"""

from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass
from importlib import resources

#: Keys and credentials: never shipped unless a `!` line in .dockerignore asks for one.
SECRET_PATTERNS: tuple[str, ...] = (
    "**/*.pem",
    "**/*.key",
    "**/*.p12",
    "**/*.pfx",
    "**/id_rsa*",
    "**/id_dsa*",
    "**/id_ecdsa*",
    "**/id_ed25519*",
    "**/.ssh",
    "**/.aws",
    "**/.env",
    "**/secrets.*",
    "**/.netrc",
    "**/.pypirc",
    "**/.git-credentials",
    "**/.docker/config.json",
    "**/.kube/config",
)
#: What kservehelper writes into the folder (.kservehelper/last-push.json): never shipped.
ALWAYS_EXCLUDED = (".kservehelper",)


def default_dockerignore() -> str:
    """The ignore rules used when the model folder has no .dockerignore."""
    return (resources.files("kservehelper.build") / "templates" / "dockerignore").read_text()


def _lines(text: str) -> list[str]:
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def read_dockerignore(model_dir: pathlib.Path) -> list[str]:
    """The model folder's .dockerignore patterns, or the default ones (secrets not included)."""
    path = model_dir / ".dockerignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else default_dockerignore()
    return [*_lines(text), *ALWAYS_EXCLUDED]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex on '/'-paths."""
    pattern = os.path.normpath(pattern.lstrip("/")).replace(os.sep, "/")
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    # A pattern matching a directory excludes everything beneath it.
    return re.compile("".join(out) + "(?:/.*)?", re.DOTALL)


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """Whether a '/'-separated path is excluded; later patterns win, '!' re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:].strip() if negate else pattern
        if body and _pattern_regex(body).fullmatch(relative):
            ignored = not negate
    return ignored


@dataclass(frozen=True)
class IgnoreRules:
    """The folder's rules plus the secret exclusions, and why a path is left out."""

    patterns: list[str]  # the folder's own (or the default) rules

    @classmethod
    def for_folder(cls, model_dir: pathlib.Path) -> IgnoreRules:
        """The rules that apply to ``model_dir``."""
        return cls(read_dockerignore(model_dir))

    @property
    def effective(self) -> list[str]:
        """Secret exclusions first, so that only a later ``!`` line can re-include one."""
        return [*SECRET_PATTERNS, *self.patterns]

    @property
    def may_reinclude(self) -> bool:
        """Whether some ``!`` line could re-include a path beneath an excluded folder."""
        return any(pattern.startswith("!") for pattern in self.patterns)

    def excludes(self, relative: str) -> bool:
        """Whether ``relative`` stays out of the image."""
        return is_ignored(relative, self.effective)

    def excluded_as_secret(self, relative: str) -> bool:
        """Whether ``relative`` is left out only because it looks like a key or credential."""
        return self.excludes(relative) and not is_ignored(relative, self.patterns)
