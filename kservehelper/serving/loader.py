"""Importing the model class from a located model folder (serving and local predict only).

``kservehelper build``, ``dockerfile`` and ``deploy`` never import the user's model on the host.

A model file that fails to import (a syntax error, a missing package, an exception at module
level) is a :class:`~kservehelper.errors.ModelError` whose one line names the file and line in
the user's code, and what to do; the original exception is its ``__cause__`` (``--debug``).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
import traceback

from kservehelper.config.locate import ModelLocation
from kservehelper.errors import ConfigError, ModelError, SignatureError


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
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise import_error(exc, location) from exc
    model_class = getattr(module, location.class_name, None)
    if not isinstance(model_class, type):
        classes = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and v.__module__ == module_name
        )
        hint = f" Classes defined there: {', '.join(classes)}." if classes else ""
        raise SignatureError(
            f"{display_path(location.entrypoint)}: no class named {location.class_name!r}.{hint} "
            "Pass --class NAME or set `class:` in config.yaml."
        )
    return model_class


def import_error(exc: BaseException, location: ModelLocation) -> ModelError:
    """The one-line error for a model file that raised ``exc`` while being imported."""
    entry = display_path(location.entrypoint)
    if isinstance(exc, SyntaxError):  # IndentationError and TabError too
        where = f"{display_path(exc.filename)}:{exc.lineno}" if exc.filename else entry
        return ModelError(
            f"{where}: {type(exc).__name__}: {exc.msg}; fix the code there "
            f"(importing {entry} failed)"
        )
    where = code_location(exc, location.folder) or entry
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        package = exc.name.split(".")[0]
        return ModelError(
            f"{where}: no module named {exc.name!r}: install the package that provides "
            f"{package!r} in this environment (and list it in config.yaml's build "
            "python_packages or requirements, for the image)"
        )
    return ModelError(
        f"{where}: importing {entry} raised {type(exc).__name__}: {exc}; fix the code there"
    )


def code_location(exc: BaseException, folder: pathlib.Path) -> str | None:
    """``file:line`` of the innermost frame of ``exc``'s traceback inside the model's folder.

    That is the line of the user's code that raised (or called what raised); ``None`` when no
    frame of the traceback is in the folder.
    """
    root = folder.resolve()
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = pathlib.Path(frame.filename)
        if path.is_absolute() and path.is_relative_to(root) and "site-packages" not in path.parts:
            found = f"{display_path(frame.filename)}:{frame.lineno}"
    return found


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as the user would write it: relative to the current folder when inside it."""
    absolute = pathlib.Path(path).resolve()
    try:
        return str(absolute.relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(absolute)
