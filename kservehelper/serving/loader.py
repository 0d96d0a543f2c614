"""Importing the model class from a located model folder (serving and local predict only).

``kservehelper build``, ``dockerfile`` and ``deploy`` never import the user's model on the host.
"""

from __future__ import annotations

import importlib.util
import sys

from kservehelper.config.locate import ModelLocation
from kservehelper.errors import ConfigError, SignatureError


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
