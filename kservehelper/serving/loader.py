"""Finding and importing the model class in a model folder.

The folder's ``config.yaml`` may name the ``entrypoint`` (default ``model.py``), the model
``name`` (default: the folder's name) and the ``class`` (default ``Model``). Only these keys are
read here; the full config.yaml validation belongs to ``kservehelper build``.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import sys
from dataclasses import dataclass
from typing import Any

import yaml

from kservehelper.errors import ConfigError, SignatureError

CONFIG_FILE = "config.yaml"
DEFAULT_ENTRYPOINT = "model.py"
DEFAULT_CLASS = "Model"


@dataclass(frozen=True)
class ModelLocation:
    """Where a model is: its folder, entrypoint file, KServe name and class name."""

    folder: pathlib.Path
    entrypoint: pathlib.Path
    name: str
    class_name: str


def default_model_name(folder: pathlib.Path) -> str:
    """A KServe model name from a folder name: lowercase, runs of other characters → ``-``."""
    name = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    return name or "model"


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


def import_model_class(location: ModelLocation) -> type:
    """Import the entrypoint (its folder first on ``sys.path``) and return the model class."""
    folder = str(location.folder.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # Import under the file's own name (``model``) when that name is free, as `python
    # model.py` users expect and so that worker processes (spawned, `--workers N`) can import
    # the class again by name; otherwise under a private name.
    module_name = location.entrypoint.stem
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__file__", None) != str(
        location.entrypoint.resolve()
    ):
        module_name = f"kservehelper_user_{module_name}"
    spec = importlib.util.spec_from_file_location(module_name, location.entrypoint.resolve())
    if spec is None or spec.loader is None:
        raise ConfigError(f"{location.entrypoint}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    model_class = getattr(module, location.class_name, None)
    if not isinstance(model_class, type):
        classes = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and v.__module__ == module_name
        )
        hint = f" Classes defined there: {', '.join(classes)}." if classes else ""
        raise SignatureError(
            f"{location.entrypoint}: no class named {location.class_name!r}.{hint} "
            "Pass --class NAME or set `class:` in config.yaml."
        )
    return model_class
