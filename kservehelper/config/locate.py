"""Finding the model in a model folder: its entrypoint, KServe name and class.

The folder's ``config.yaml`` may name the ``entrypoint`` (default ``model.py``), the model
``name`` (default: the folder's name) and the ``class`` (default ``Model``). Only these keys are
read here, leniently, so ``serve`` and ``predict`` work in a folder whose build settings are
still being written; the full config.yaml validation is :mod:`kservehelper.config.project`.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

from kservehelper.config.checks import suggest_model_name
from kservehelper.errors import ConfigError

CONFIG_FILE = "config.yaml"
#: Where `kservehelper push` records the pushed digest, for `kservehelper deploy`.
LAST_PUSH_FILE = pathlib.Path(".kservehelper") / "last-push.json"
DEFAULT_ENTRYPOINT = "model.py"
DEFAULT_CLASS = "Model"


@dataclass(frozen=True)
class ModelLocation:
    """Where a model is: its folder, entrypoint file, KServe name and class name."""

    folder: pathlib.Path
    entrypoint: pathlib.Path
    name: str
    class_name: str


def default_model_name(folder: pathlib.Path | str) -> str:
    """A KServe model name from a folder (or a folder's name): lowercased, runs of other
    characters become one ``-``, ``m-`` before a leading digit, at most 45 characters, so it
    satisfies KServe's rule ``[a-z]([-a-z0-9]*[a-z0-9])?``. The one rule serve, build and
    deploy all use."""
    base = folder.resolve().name if isinstance(folder, pathlib.Path) else folder
    return suggest_model_name(base)


def locate_model(
    folder: pathlib.Path, name: str | None = None, class_name: str | None = None
) -> ModelLocation:
    """Read the folder's config.yaml (if any) for the entrypoint, name and class."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder; pass the folder that holds your model.py")
    settings: dict[str, Any] = {}
    config = folder / CONFIG_FILE
    if config.is_file():
        try:
            loaded = yaml.safe_load(config.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config}: not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config}: expected a mapping of keys (build:, image:, ...)")
        settings = loaded
    entry = settings.get("entrypoint") or DEFAULT_ENTRYPOINT
    entrypoint = folder / str(entry)
    if not entrypoint.is_file():
        where = f"{config}: entrypoint" if "entrypoint" in settings else str(folder)
        raise ConfigError(
            f"{where}: {entry} does not exist; create it, or set `entrypoint:` in {CONFIG_FILE}"
        )
    return ModelLocation(
        folder=folder,
        entrypoint=entrypoint,
        name=name or str(settings.get("name") or default_model_name(folder)),
        class_name=class_name or str(settings.get("class") or DEFAULT_CLASS),
    )
