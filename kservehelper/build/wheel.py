"""A wheel of the running kservehelper, for the image: every image runs the version that built it.

Built from the imported package's files and its installed metadata (requirements and the console
script), with fixed timestamps, so an unchanged kservehelper gives a byte-identical wheel and
Docker's layer cache holds. ``$KSERVEHELPER_WHEEL`` names a prebuilt wheel to use instead.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import pathlib
import re
import zipfile

import kservehelper
from kservehelper.errors import BuildError
from kservehelper.settings import env_name

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# A prebuilt kservehelper wheel to stage instead of one built from the running package.
WHEEL_ENV = env_name("wheel")


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
