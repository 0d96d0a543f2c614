"""Stages the build context outside the model folder, copying as Docker would.

Layout of a staged context (what the Dockerfile's COPY lines and bind mounts name)::

    Dockerfile
    deps/kservehelper/<wheel>        a wheel of the running kservehelper
    deps/runtime/requirements.txt    that wheel's requirements
    deps/requirements/<path>         each requirements file, and the files it includes (-r/-c)
    deps/wheels/<file>.whl           each local wheel in build.python_packages
    deps/scripts/python.sh           kservehelper's build-step scripts
    app/                             the model folder, minus .dockerignore'd files

Dependencies sit apart from ``app/`` so a code change invalidates only the last layers.

The model folder is copied as Docker copies a context, never following a link out of it: a
link to a file or folder inside stays a link; a link pointing outside, a dangling link and a
special file (a FIFO, a socket) are refused, each named on one line. Files that look like keys or
credentials are left out (:mod:`kservehelper.build.ignore`); files over 100 MB are reported.
Modes are normalised (files 0644, or 0755 when executable; folders 0755): the image's /app is
owned by root and readable, not writable, by the serving user.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from importlib import resources

import yaml

from kservehelper.build.ignore import IgnoreRules, default_dockerignore, is_ignored
from kservehelper.build.wheel import WHEEL_ENV, build_own_wheel, wheel_requirements
from kservehelper.config.locate import CONFIG_FILE
from kservehelper.config.project import ProjectConfig
from kservehelper.config.requirements import requirement_files
from kservehelper.errors import BuildError
from kservehelper.settings import get_settings

__all__ = [
    "WHEEL_ENV",
    "AppFiles",
    "StagedContext",
    "build_own_wheel",
    "default_dockerignore",
    "is_ignored",
    "list_app_files",
    "scan_app_folder",
    "stage_context",
]

LARGE_FILE_BYTES = 100 * 1024 * 1024


@dataclass
class AppFiles:
    """What of the model folder goes into the image, and what is worth telling the user."""

    files: list[str] = field(default_factory=list)  # regular files, '/'-paths
    links: dict[str, str] = field(default_factory=dict)  # link path -> its (relative) target
    secrets_left_out: list[str] = field(default_factory=list)
    large_files: list[tuple[str, int]] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per thing the user should know about what is (not) in the image."""
        lines = []
        if self.secrets_left_out:
            example = self.secrets_left_out[0].rstrip("/")
            lines.append(
                "not copied into the image, as they look like keys or credentials: "
                f"{', '.join(self.secrets_left_out)} (to ship one, add a line '!{example}' "
                "to .dockerignore)"
            )
        if self.large_files:
            listed = ", ".join(f"{path} ({size / 2**20:.0f} MB)" for path, size in self.large_files)
            lines.append(
                f"large files go into the image: {listed}; exclude them in .dockerignore and "
                "download them in load() (or mount them) to keep the image small"
            )
        return lines


@dataclass
class StagedContext:
    """A staged build context on disk; ``cleanup()`` removes it."""

    path: pathlib.Path
    wheel: str  # path of kservehelper's wheel, relative to the context
    requirements: list[str] = field(default_factory=list)  # relative to the context
    wheels: list[str] = field(default_factory=list)  # relative to the context
    app_files: list[str] = field(default_factory=list)  # relative to the model folder
    warnings: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        """Delete the staged context."""
        shutil.rmtree(self.path, ignore_errors=True)


def _link_problem(root: pathlib.Path, path: pathlib.Path) -> tuple[str | None, str]:
    """(problem, target relative to the link's folder) for a symlink inside ``root``."""
    written = os.readlink(path)
    target = pathlib.Path(os.path.realpath(path))
    if not target.exists():
        return f"-> {written}: dangling (its target does not exist)", written
    if not target.is_relative_to(root):
        return f"-> {written}: points outside the model folder (to {target})", written
    return None, os.path.relpath(target, os.path.realpath(path.parent))


def scan_app_folder(model_dir: pathlib.Path) -> AppFiles:
    """Walk ``model_dir`` as Docker reads a context; raise :class:`BuildError` listing every
    link or special file that cannot be copied."""
    root = pathlib.Path(os.path.realpath(model_dir))
    rules = IgnoreRules.for_folder(root)
    found = AppFiles()
    problems: list[str] = []

    def consider(relative: str, path: pathlib.Path) -> None:
        if rules.excludes(relative):
            if rules.excluded_as_secret(relative):
                found.secrets_left_out.append(relative + ("/" if path.is_dir() else ""))
            return
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            problem, target = _link_problem(root, path)
            if problem:
                problems.append(f"{relative} {problem}")
            else:
                found.links[relative] = target
        elif stat.S_ISREG(info.st_mode):
            found.files.append(relative)
            if info.st_size > LARGE_FILE_BYTES:
                found.large_files.append((relative, info.st_size))
        elif not stat.S_ISDIR(info.st_mode):
            problems.append(f"{relative}: not a regular file (a FIFO, socket or device)")

    for current, dirs, names in os.walk(root):
        base = pathlib.Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        keep = []
        for name in sorted(dirs):
            path = pathlib.Path(current, name)
            relative = prefix + name
            if path.is_symlink():
                consider(relative, path)  # a link to a folder stays a link; never followed
            elif rules.excludes(relative) and not rules.may_reinclude:
                consider(relative, path)  # pruned (reported if it looks like a secret)
            else:
                keep.append(name)
        dirs[:] = keep
        for name in sorted(names):
            consider(prefix + name, pathlib.Path(current, name))
    if problems:
        raise BuildError(
            f"{root}: cannot copy into the image (remove these, or list them in .dockerignore):"
            "\n  " + "\n  ".join(problems)
        )
    found.files.sort()
    return found


def list_app_files(model_dir: pathlib.Path) -> list[str]:
    """Regular files of the model folder that go into the image, as sorted '/'-paths."""
    return scan_app_folder(model_dir).files


def _copy_file(source: pathlib.Path, target: pathlib.Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    executable = source.stat().st_mode & stat.S_IXUSR
    target.chmod(0o755 if executable else 0o644)


def _stage_app(config: ProjectConfig, app: pathlib.Path, listing: AppFiles) -> None:
    model_dir = config.model_dir
    app.mkdir()
    for relative in listing.files:
        if relative == CONFIG_FILE:
            _write_image_config(model_dir / relative, app / relative)
        else:
            _copy_file(model_dir / relative, app / relative)
    for relative, target in listing.links.items():
        (app / relative).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, app / relative)
    for folder in [app, *(p for p in app.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o755)


def _write_image_config(source: pathlib.Path, target: pathlib.Path) -> None:
    """config.yaml without its ``deploy:`` section (cluster settings and credentials belong to
    the deployment, not to every copy of the image)."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    if isinstance(raw, dict) and "deploy" in raw:
        raw.pop("deploy")
        target.parent.mkdir(parents=True, exist_ok=True)
        header = "# config.yaml as built into the image (its deploy: section is not shipped)\n"
        target.write_text(header + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        target.chmod(0o644)
    else:
        _copy_file(source, target)


def _stage_wheel(root: pathlib.Path) -> pathlib.Path:
    prebuilt = get_settings().wheel
    if not prebuilt:
        return build_own_wheel(root / "deps" / "kservehelper")
    source = pathlib.Path(prebuilt)
    if not source.is_file() or not source.name.startswith("kservehelper-"):
        raise BuildError(f"${WHEEL_ENV}={prebuilt}: not a kservehelper wheel file")
    wheel = root / "deps" / "kservehelper" / source.name
    wheel.parent.mkdir(parents=True)
    shutil.copy2(source, wheel)
    return wheel


def stage_context(config: ProjectConfig, dockerfile_text: str | None = None) -> StagedContext:
    """Copy what the build needs into a fresh temporary folder outside the model folder."""
    model_dir = config.model_dir
    listing = scan_app_folder(model_dir)  # refuses bad links before anything is written
    root = pathlib.Path(tempfile.mkdtemp(prefix="kservehelper-build-"))
    try:
        wheel = _stage_wheel(root)
        staged = StagedContext(root, wheel.relative_to(root).as_posix())
        staged.warnings = listing.warnings()
        runtime = root / "deps" / "runtime" / "requirements.txt"
        runtime.parent.mkdir(parents=True)
        runtime.write_text(wheel_requirements(wheel), encoding="utf-8")
        for relative in requirement_files(model_dir, config.build.python_requirements):
            target = root / "deps" / "requirements" / relative
            _copy_file(model_dir / relative, target)
            staged.requirements.append(target.relative_to(root).as_posix())
        for package in local_wheels(config):
            target = root / "deps" / "wheels" / pathlib.Path(package).name
            _copy_file(model_dir / package, target)
            staged.wheels.append(target.relative_to(root).as_posix())
        scripts = root / "deps" / "scripts"
        scripts.mkdir(parents=True)
        for script in (resources.files("kservehelper.build") / "scripts").iterdir():
            if script.name.endswith(".sh"):
                (scripts / script.name).write_bytes(script.read_bytes())
                (scripts / script.name).chmod(0o755)
        _stage_app(config, root / "app", listing)
        staged.app_files = sorted([*listing.files, *listing.links])
        if dockerfile_text is not None:
            (root / "Dockerfile").write_text(dockerfile_text, encoding="utf-8")
        return staged
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def local_wheels(config: ProjectConfig) -> list[str]:
    """The entries of build.python_packages that are local .whl files."""
    return [
        p.strip()
        for p in config.build.python_packages
        if p.strip().endswith(".whl") and "://" not in p
    ]
