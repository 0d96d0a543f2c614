"""The staged build context: .dockerignore, the default ignore, kservehelper's own wheel."""

from __future__ import annotations

import pathlib
import zipfile

import pytest

from kservehelper import __version__
from kservehelper.build.context import (
    build_own_wheel,
    is_ignored,
    list_app_files,
    stage_context,
)
from kservehelper.config.project import load_config


@pytest.mark.parametrize(
    ("path", "patterns", "ignored"),
    [
        ("a/__pycache__/x.pyc", ["**/__pycache__"], True),
        ("__pycache__/x.pyc", ["**/__pycache__"], True),
        ("data/big.bin", ["data"], True),
        ("data/keep.txt", ["data/*", "!data/keep.txt"], False),
        ("model.py", ["*.py"], True),
        ("sub/model.py", ["*.py"], False),
        ("sub/model.py", ["**/*.py"], True),
        ("weights.pt", ["/weights.pt"], True),
        ("x1.txt", ["x?.txt"], True),
    ],
)
def test_dockerignore_semantics(path: str, patterns: list[str], ignored: bool) -> None:
    assert is_ignored(path, patterns) is ignored


def make_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    folder = tmp_path / "m"
    for name in [
        "model.py",
        "config.yaml",
        "requirements.txt",
        "weights/w.bin",
        ".git/HEAD",
        ".venv/bin/python",
        "__pycache__/model.cpython-311.pyc",
        ".kservehelper/last-push.json",
        "wheels/extra-1.0-py3-none-any.whl",
    ]:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("class Model:\n    pass\n" if name == "model.py" else "x")
    (folder / "config.yaml").write_text(
        "build:\n  python_requirements: [requirements.txt]\n"
        "  python_packages: [wheels/extra-1.0-py3-none-any.whl]\n"
    )
    return folder


def test_default_ignore_drops_caches_venvs_and_git(tmp_path: pathlib.Path) -> None:
    files = list_app_files(make_folder(tmp_path))
    assert "model.py" in files and "weights/w.bin" in files
    dropped = (".git/", ".venv/", "__pycache__/", ".kservehelper/")
    assert not any(f.startswith(dropped) for f in files)


def test_own_dockerignore_is_honoured(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    (folder / ".dockerignore").write_text("weights\n")
    files = list_app_files(folder)
    assert "weights/w.bin" not in files
    assert ".git/HEAD" in files  # the user's file replaces the default
    assert ".kservehelper/last-push.json" not in files  # never shipped


def test_stage_context_is_outside_the_model_folder(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    staged = stage_context(load_config(folder), "FROM scratch\n")
    try:
        root = staged.path
        assert not root.is_relative_to(folder)
        assert (root / "Dockerfile").read_text() == "FROM scratch\n"
        assert (root / "app" / "model.py").is_file()
        assert (root / "deps/requirements/requirements.txt").is_file()
        assert (root / "deps/wheels/extra-1.0-py3-none-any.whl").is_file()
        assert staged.wheel == f"deps/kservehelper/kservehelper-{__version__}-py3-none-any.whl"
    finally:
        staged.cleanup()
    assert not root.exists()
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before  # untouched


def test_own_wheel_is_reproducible_and_complete(tmp_path: pathlib.Path) -> None:
    first = build_own_wheel(tmp_path / "a").read_bytes()
    second_path = build_own_wheel(tmp_path / "b")
    assert first == second_path.read_bytes()
    with zipfile.ZipFile(second_path) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"kservehelper-{__version__}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"kservehelper-{__version__}.dist-info/entry_points.txt")
    assert "kservehelper/build/templates/Dockerfile.j2" in names
    assert not any("__pycache__" in n for n in names)
    assert f"Version: {__version__}" in metadata and "Requires-Dist: kserve" in metadata
    assert b"kservehelper = kservehelper.cli:main" in entry_points
