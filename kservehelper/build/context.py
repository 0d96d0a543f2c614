"""Stages the build context outside the model folder.

Layout of a staged context (what the Dockerfile's COPY lines name)::

    Dockerfile
    deps/kservehelper/<wheel>        a wheel of the running kservehelper
    deps/requirements/<path>         each build.python_requirements file
    deps/wheels/<file>.whl           each local wheel in build.python_packages
    app/                             the model folder, minus .dockerignore'd files

Dependencies sit apart from ``app/`` so a code change invalidates only the last layers.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import os
import pathlib
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib import resources

import kservehelper
from kservehelper.config.project import ProjectConfig
from kservehelper.errors import BuildError
from kservehelper.settings import env_name, get_settings

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# A prebuilt kservehelper wheel to stage instead of one built from the running package.
WHEEL_ENV = env_name("wheel")


@dataclass
class StagedContext:
    """A staged build context on disk; ``cleanup()`` removes it."""

    path: pathlib.Path
    wheel: str  # path of kservehelper's wheel, relative to the context
    requirements: list[str] = field(default_factory=list)  # relative to the context
    wheels: list[str] = field(default_factory=list)  # relative to the context
    app_files: list[str] = field(default_factory=list)  # relative to the model folder

    def cleanup(self) -> None:
        """Delete the staged context."""
        shutil.rmtree(self.path, ignore_errors=True)


def default_dockerignore() -> str:
    """The ignore rules used when the model folder has no .dockerignore."""
    return (resources.files("kservehelper.build") / "templates" / "dockerignore").read_text()


def read_dockerignore(model_dir: pathlib.Path) -> list[str]:
    """The model folder's .dockerignore patterns, or the default ones."""
    path = model_dir / ".dockerignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else default_dockerignore()
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    # Never ship what kservehelper itself writes into the folder (last-push.json ...).
    return [*patterns, ".kservehelper"]


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
    return re.compile("^" + "".join(out) + "(?:/.*)?$")


def is_ignored(relative: str, patterns: list[str]) -> bool:
    """Whether a '/'-separated path is excluded; later patterns win, '!' re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:].strip() if negate else pattern
        if body and _pattern_regex(body).match(relative):
            ignored = not negate
    return ignored


def list_app_files(model_dir: pathlib.Path) -> list[str]:
    """Files of the model folder that go into the image, as sorted '/'-paths."""
    patterns = read_dockerignore(model_dir)
    files = []
    for root, dirs, names in os.walk(model_dir):
        base = pathlib.Path(root).relative_to(model_dir).as_posix()
        prefix = "" if base == "." else base + "/"
        # Prune ignored directories unless a '!' pattern might re-include something in them.
        if not any(p.startswith("!") for p in patterns):
            dirs[:] = [d for d in dirs if not is_ignored(prefix + d, patterns)]
        for name in names:
            relative = prefix + name
            if not is_ignored(relative, patterns):
                files.append(relative)
    return sorted(files)


def build_own_wheel(directory: pathlib.Path) -> pathlib.Path:
    """Write a wheel of the running kservehelper into ``directory``.

    Built from the imported package's files and its installed metadata (requirements and the
    console script), with fixed timestamps so an unchanged kservehelper gives a byte-identical
    wheel and Docker's layer cache holds.
    """
    version = kservehelper.__version__
    package_dir = pathlib.Path(kservehelper.__file__).parent
    try:
        dist = importlib.metadata.distribution("kservehelper")
        metadata = dist.read_text("METADATA") or ""
        entry_points = dist.read_text("entry_points.txt") or ""
    except importlib.metadata.PackageNotFoundError:
        metadata, entry_points = "", ""
    if "Name: kservehelper" not in metadata:
        raise BuildError(
            "cannot stage kservehelper into the image: its package metadata is missing; "
            "hint: install it with `pip install -e .` (or from its wheel)"
        )
    metadata = re.sub(r"(?m)^Version: .*$", f"Version: {version}", metadata)
    entry_points = entry_points or "[console_scripts]\nkservehelper = kservehelper.cli:main\n"
    dist_info = f"kservehelper-{version}.dist-info"
    members: list[tuple[str, bytes]] = []
    for path in sorted(package_dir.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
            continue
        members.append(
            ("kservehelper/" + path.relative_to(package_dir).as_posix(), path.read_bytes())
        )
    members.append((f"{dist_info}/METADATA", metadata.encode()))
    members.append((f"{dist_info}/entry_points.txt", entry_points.encode()))
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: kservehelper\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    members.append((f"{dist_info}/WHEEL", wheel_meta.encode()))
    record = io.StringIO()
    for name, data in members:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.write(f"{name},sha256={digest},{len(data)}\n")
    record.write(f"{dist_info}/RECORD,,\n")
    members.append((f"{dist_info}/RECORD", record.getvalue().encode()))

    directory.mkdir(parents=True, exist_ok=True)
    wheel_path = directory / f"kservehelper-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel_path


def stage_context(config: ProjectConfig, dockerfile_text: str | None = None) -> StagedContext:
    """Copy what the build needs into a fresh temporary folder outside the model folder."""
    model_dir = config.model_dir
    root = pathlib.Path(tempfile.mkdtemp(prefix="kservehelper-build-"))
    try:
        prebuilt = get_settings().wheel
        if prebuilt:
            source = pathlib.Path(prebuilt)
            if not source.is_file() or not source.name.startswith("kservehelper-"):
                raise BuildError(f"${WHEEL_ENV}={prebuilt}: not a kservehelper wheel file")
            wheel = root / "deps" / "kservehelper" / source.name
            wheel.parent.mkdir(parents=True)
            shutil.copy2(source, wheel)
        else:
            wheel = build_own_wheel(root / "deps" / "kservehelper")
        staged = StagedContext(root, wheel.relative_to(root).as_posix())
        runtime = root / "deps" / "runtime" / "requirements.txt"
        runtime.parent.mkdir(parents=True)
        runtime.write_text(wheel_requirements(wheel), encoding="utf-8")
        for requirements in config.build.python_requirements:
            relative = pathlib.Path(requirements).as_posix()
            target = root / "deps" / "requirements" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(model_dir / requirements, target)
            staged.requirements.append(target.relative_to(root).as_posix())
        for package in local_wheels(config):
            target = root / "deps" / "wheels" / pathlib.Path(package).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(model_dir / package, target)
            staged.wheels.append(target.relative_to(root).as_posix())
        app = root / "app"
        app.mkdir()
        staged.app_files = list_app_files(model_dir)
        for relative in staged.app_files:
            target = app / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(model_dir / relative, target)
        if dockerfile_text is not None:
            (root / "Dockerfile").write_text(dockerfile_text, encoding="utf-8")
        return staged
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def wheel_requirements(wheel: pathlib.Path) -> str:
    """A wheel's runtime requirements (Requires-Dist without extras) as a requirements file."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    lines = [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    return "".join(f"{line}\n" for line in sorted(lines))


def local_wheels(config: ProjectConfig) -> list[str]:
    """The entries of build.python_packages that are local .whl files."""
    return [
        p.strip()
        for p in config.build.python_packages
        if p.strip().endswith(".whl") and "://" not in p
    ]
