"""The staged build context: .dockerignore, the default ignore, kservehelper's own wheel."""

from __future__ import annotations

import os
import pathlib
import stat
import zipfile

import pytest

from kservehelper import __version__
from kservehelper.build.context import (
    LARGE_FILE_BYTES,
    build_own_wheel,
    is_ignored,
    list_app_files,
    scan_app_folder,
    stage_context,
)
from kservehelper.config.project import load_config
from kservehelper.errors import BuildError


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


# ------------------------------------------------------------------------ links and specials


def test_links_inside_stay_links_and_are_never_followed(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "weights" / "latest.bin").symlink_to("w.bin")
    (folder / "current").symlink_to(folder / "weights")  # absolute, to a folder inside
    staged = stage_context(load_config(folder))
    try:
        app = staged.path / "app"
        assert os.readlink(app / "weights" / "latest.bin") == "w.bin"
        assert os.readlink(app / "current") == "weights"  # made relative: valid in /app
        assert (app / "current" / "w.bin").read_text() == "x"
    finally:
        staged.cleanup()


def test_links_outside_and_dangling_are_refused_each_on_one_line(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    secret = tmp_path / "host-secret.txt"
    secret.write_text("root:$6$hash")
    (folder / "shadow").symlink_to(secret)
    (folder / "gone").symlink_to(folder / "missing.bin")
    (folder / "up").symlink_to("..")
    before = set(tmp_path.iterdir())
    with pytest.raises(BuildError) as caught:
        stage_context(load_config(folder))
    lines = str(caught.value).splitlines()
    assert "remove these, or list them in .dockerignore" in lines[0]
    problems = {line.split()[0]: line for line in lines[1:]}
    assert set(problems) == {"shadow", "gone", "up"}
    assert str(secret) in problems["shadow"] and "outside the model folder" in problems["shadow"]
    assert "dangling" in problems["gone"]
    assert set(tmp_path.iterdir()) == before  # nothing staged
    (folder / ".dockerignore").write_text("shadow\ngone\nup\n")
    assert "shadow" not in list_app_files(folder)  # ignored links are fine


def test_a_fifo_is_refused_instead_of_hanging(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    os.mkfifo(folder / "pipe")
    with pytest.raises(BuildError, match="pipe: not a regular file"):
        scan_app_folder(folder)


# ----------------------------------------------------------------- secrets and large files

SECRETS = [
    "server.pem",
    "keys/tls.key",
    "id_rsa",
    ".ssh/config",
    ".aws/credentials",
    "sub/.env",
    "cert.p12",
    "secrets.json",
    "deep/er/secrets.yaml",
]


def test_keys_and_credentials_are_left_out_and_reported(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    for name in SECRETS:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("secret")
    listing = scan_app_folder(folder)
    assert not set(SECRETS) & set(listing.files)
    assert "model.py" in listing.files and "weights/w.bin" in listing.files
    (warning,) = listing.warnings()
    for shown in ("server.pem", "keys/tls.key", ".ssh/", ".aws/", "sub/.env", "secrets.json"):
        assert shown in warning
    assert "'!" in warning  # how to ship one on purpose


def test_a_dockerignore_of_ones_own_keeps_the_secret_rules(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    for name in SECRETS:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("secret")
    (folder / ".dockerignore").write_text("weights\n")
    files = list_app_files(folder)
    assert not set(SECRETS) & set(files)
    (folder / ".dockerignore").write_text("weights\n!keys/tls.key\n!.aws\n")
    files = list_app_files(folder)
    assert "keys/tls.key" in files and ".aws/credentials" in files
    assert "server.pem" not in files  # only what a '!' line names


def test_large_files_are_listed(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    with (folder / "weights" / "big.bin").open("wb") as handle:
        handle.truncate(LARGE_FILE_BYTES + 1)  # sparse: no 100 MB written
    (warning,) = scan_app_folder(folder).warnings()
    assert "weights/big.bin (100 MB)" in warning and ".dockerignore" in warning


# ------------------------------------------------------------- requirements, modes, config


def test_nested_requirement_files_are_staged_with_their_layout(tmp_path: pathlib.Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "requirements.txt").write_text("-r reqs/base.txt\n--constraint=pins.txt\n")
    (folder / "reqs").mkdir()
    (folder / "reqs" / "base.txt").write_text("six\n-c ../pins.txt\n")
    (folder / "pins.txt").write_text("six==1.16.0\n")
    staged = stage_context(load_config(folder))
    try:
        requirements = staged.path / "deps" / "requirements"
        assert sorted(staged.requirements) == [
            "deps/requirements/pins.txt",
            "deps/requirements/reqs/base.txt",
            "deps/requirements/requirements.txt",
        ]
        assert (requirements / "reqs" / "base.txt").read_text().startswith("six")
    finally:
        staged.cleanup()


def test_app_is_readable_not_writable_and_config_ships_without_deploy(
    tmp_path: pathlib.Path,
) -> None:
    folder = make_folder(tmp_path)
    (folder / "model.py").chmod(0o600)
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o700)
    (folder / "config.yaml").write_text(
        "deploy:\n  env: {UPSTREAM_PASSWORD: hunter2}\nbuild:\n  python_packages: [six]\n"
    )
    staged = stage_context(load_config(folder))
    try:
        app = staged.path / "app"
        assert stat.S_IMODE((app / "model.py").stat().st_mode) == 0o644
        assert stat.S_IMODE((app / "run.sh").stat().st_mode) == 0o755
        assert stat.S_IMODE((app / "weights").stat().st_mode) == 0o755
        shipped = (app / "config.yaml").read_text()
        assert "hunter2" not in shipped and "deploy" not in shipped.split("\n", 1)[1]
        assert "six" in shipped
        assert (staged.path / "deps" / "scripts" / "python.sh").is_file()
    finally:
        staged.cleanup()
