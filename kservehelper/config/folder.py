"""Checks of what config.yaml names in the model folder, and of its base-image choice.

Run by :func:`kservehelper.config.project.load_config` after the schema checks; every mistake is
a :class:`~kservehelper.errors.ConfigError` naming the file, the line and a fix.
"""

from __future__ import annotations

import ast
import pathlib
from typing import TYPE_CHECKING, Any

from kservehelper.config.errors import line_of
from kservehelper.config.requirements import requirement_files
from kservehelper.errors import ConfigError

if TYPE_CHECKING:
    from kservehelper.config.project import ProjectConfig


def check_files(path: pathlib.Path, text: str, config: ProjectConfig) -> None:
    """The entrypoint (parsed, never imported), requirements files (and their includes) and
    local wheels exist inside the model folder."""
    model_dir = config.model_dir

    def inside(relative: str, loc: tuple[Any, ...], what: str) -> pathlib.Path:
        target = (model_dir / relative).resolve()
        where = f"{path}:{line_of(text, loc)}"
        if not target.is_relative_to(model_dir):
            raise ConfigError(f"{where}: {what} '{relative}' must be inside {model_dir}")
        if not target.is_file():
            raise ConfigError(
                f"{where}: {what} '{relative}' does not exist in {model_dir}; fix the path "
                "(relative to the folder holding config.yaml)"
            )
        return target

    entry = inside(config.entrypoint, ("entrypoint",), "entrypoint")
    if entry.suffix != ".py":
        raise ConfigError(f"{path}: entrypoint '{config.entrypoint}' must be a .py file")
    try:
        tree = ast.parse(entry.read_text(encoding="utf-8"), filename=str(entry))
    except SyntaxError as error:
        raise ConfigError(f"{entry}:{error.lineno}: syntax error: {error.msg}") from error
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    if config.class_name not in classes:
        found = f"it defines {', '.join(classes)}" if classes else "it defines no class"
        raise ConfigError(
            f"{entry}: no top-level class '{config.class_name}' ({found}); define it, or set "
            f"`class: <Name>` in {path.name}"
        )
    for index, requirements in enumerate(config.build.python_requirements):
        inside(requirements, ("build", "python_requirements", index), "requirements file")
    requirement_files(model_dir, config.build.python_requirements)  # their -r/-c includes
    for index, package in enumerate(config.build.python_packages):
        if package.strip().endswith(".whl") and "://" not in package:
            inside(package.strip(), ("build", "python_packages", index), "wheel")


def check_base_image(path: pathlib.Path, text: str, config: ProjectConfig) -> None:
    """The Python/CUDA/NGC combination has a base image; its warnings and what it refuses
    (python3-* apt packages where the model's Python cannot import them)."""
    from kservehelper.build.images import resolve_base_image

    key = "cuda" if config.build.cuda else "python_version"
    try:
        base = resolve_base_image(config.build)
    except ConfigError as error:
        raise ConfigError(f"{path}:{line_of(text, ('build', key))}: {error}") from None
    for warning in base.warnings:
        config._warnings.append(f"{path}:{line_of(text, ('build', key))}: {warning}")
    if base.family != "python":
        return  # checked at build time, where the image's own Python is known
    for index, package in enumerate(config.build.system_packages):
        if not package.startswith("python3-"):
            continue
        where = f"{path}:{line_of(text, ('build', 'system_packages', index))}"
        module = package.split("=")[0].removeprefix("python3-")
        pip_name = _PIP_NAMES.get(module, module)
        raise ConfigError(
            f"{where}: build.system_packages: {package} installs into Debian's own python3, "
            f"which the image's Python ({base.image}, in /usr/local) cannot import; install "
            f"the pip package instead (python_packages: [{pip_name}]), or build on build.cuda, "
            "whose model runs on the distro's Python"
        )


# Debian python3-* packages whose PyPI name differs from the module's.
_PIP_NAMES = {"opencv": "opencv-python-headless", "yaml": "PyYAML", "pil": "Pillow"}
