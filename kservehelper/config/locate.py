"""Finding the model in a model folder: its entrypoint, KServe name and class.

The folder's ``config.yaml`` may name the ``entrypoint`` (default ``model.py``), the model
``name`` and the ``class`` (default ``Model``). Only these keys are read here, leniently, so
``serve`` and ``predict`` work in a folder whose build settings are still being written; the
full config.yaml validation is :mod:`kservehelper.config.project`.

The model's name comes from :func:`resolve_model_name`, the one rule serve, build and deploy
all use: config.yaml's ``name:``, else the name the entrypoint passes to
``KServeModel.serve("...", ...)`` (read from its source, never imported), else the folder's.
"""

from __future__ import annotations

import ast
import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

from kservehelper.config.checks import KSERVE_NAME, MAX_MODEL_NAME, suggest_model_name
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


#: A KServe model name that is also a valid InferenceService name (KServe's rule; its length
#: limit is :data:`kservehelper.config.checks.MAX_MODEL_NAME`).
MODEL_NAME = KSERVE_NAME


def default_model_name(folder: pathlib.Path | str) -> str:
    """A KServe model name from a folder (or a folder's name): lowercased, runs of other
    characters become one ``-``, ``m-`` before a leading digit, at most 45 characters, so it
    satisfies KServe's rule ``[a-z]([-a-z0-9]*[a-z0-9])?``. The one rule serve, build and
    deploy all use."""
    base = folder.resolve().name if isinstance(folder, pathlib.Path) else folder
    return suggest_model_name(base)


def resolve_model_name(
    folder: pathlib.Path,
    configured: str | None = None,
    entrypoint: pathlib.Path | None = None,
    class_name: str = DEFAULT_CLASS,
) -> str:
    """The model's KServe name: the one rule ``serve``, ``build`` and ``deploy`` all use.

    1. ``configured``: config.yaml's ``name:`` (validated there);
    2. else the name the entrypoint serves its class under, ``KServeModel.serve("NAME", ...)``
       (kservehelper 2.0's way to name a model), read with :mod:`ast`: the module is never
       imported. A literal that is not a valid model name is made one (``"My_Model"`` →
       ``my-model``), as the folder's name is;
    3. else the folder's name (:func:`default_model_name`).
    """
    if configured:
        return configured
    if entrypoint is not None:
        served = served_name(entrypoint, class_name)
        if served is not None:
            valid = MODEL_NAME.fullmatch(served) and len(served) <= MAX_MODEL_NAME
            return served if valid else default_model_name(served)
    return default_model_name(folder)


def served_name(entrypoint: pathlib.Path, class_name: str = DEFAULT_CLASS) -> str | None:
    """The string literal ``entrypoint`` passes to ``KServeModel.serve(NAME, cls, ...)``.

    With several ``serve`` calls, the one serving ``class_name`` wins. None when the file
    cannot be read or parsed, makes no such call, or names the model with an expression
    (a variable, an f-string): only a literal can be read without running the code.
    """
    try:
        tree = ast.parse(entrypoint.read_bytes(), filename=str(entrypoint))
    except (OSError, SyntaxError, ValueError):
        return None
    aliases = _kservemodel_aliases(tree)
    calls: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _is_serve(node.func, aliases)):
            continue
        name_arg = node.args[0] if node.args else _keyword(node, "name")
        class_arg = node.args[1] if len(node.args) > 1 else _keyword(node, "model_class")
        if isinstance(name_arg, ast.Constant) and isinstance(name_arg.value, str):
            served_class = class_arg.id if isinstance(class_arg, ast.Name) else None
            calls.append((name_arg.value, served_class))
    if not calls:
        return None
    return next((n for n, c in calls if c == class_name), calls[0][0])


def _kservemodel_aliases(tree: ast.Module) -> set[str]:
    """The names ``KServeModel`` is bound to (``from kservehelper import KServeModel as KM``)."""
    names = {"KServeModel"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kservehelper"):
            names.update(a.asname for a in node.names if a.name == "KServeModel" and a.asname)
    return names


def _is_serve(func: ast.expr, aliases: set[str]) -> bool:
    if not (isinstance(func, ast.Attribute) and func.attr == "serve"):
        return False
    owner = func.value  # KServeModel.serve / kservehelper.KServeModel.serve
    if isinstance(owner, ast.Name):
        return owner.id in aliases
    return isinstance(owner, ast.Attribute) and owner.attr == "KServeModel"


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


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
    chosen = class_name or str(settings.get("class") or DEFAULT_CLASS)
    return ModelLocation(
        folder=folder,
        entrypoint=entrypoint,
        name=name or resolve_model_name(folder, _text(settings.get("name")), entrypoint, chosen),
        class_name=chosen,
    )


def _text(value: Any) -> str | None:
    return str(value) if value else None
