"""Build benchmark: kservehelper's Dockerfile against the one kservehelper 2.0.0 writes.

Same engine, same run, same stand-in base image, same Python packages (kserve 0.21 and
Pillow). Measures, for each: a cold build (no layer cache; for this project its BuildKit cache
mounts are pruned too), a rebuild after a code-only change, a rebuild after adding one Python
package, and the final image size. Prints a Markdown table of medians and ratios.

The original 2.0.0 is installed from the package index into its own virtual environment; only
its Dockerfile writer (kservehelper/docker.py) is used. Its Dockerfile names
``python:3.10.13-slim``: the sandbox's stand-in ``python:3.11-slim`` is tagged under that name,
so both builds start FROM the same image.

    python benchmarks/build.py --runs 3 --docker /usr/bin/docker
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

REPO = pathlib.Path(__file__).resolve().parent.parent
STAND_IN = "python:3.11-slim"
ORIGINAL_BASE = "python:3.10.13-slim"
PACKAGES = ["Pillow"]
ADDED_PACKAGE = "six"

MODEL_PY = """\
import base64
import io

from PIL import Image, ImageFilter

from kservehelper.types import Input


class Model:
    def load(self):
        pass

    def predict(self, image: str = Input(default=""), radius: float = Input(default=2)) -> str:
        picture = Image.open(io.BytesIO(base64.b64decode(image)))
        out = io.BytesIO()
        picture.filter(ImageFilter.GaussianBlur(radius)).convert("RGB").save(out, "JPEG")
        return base64.b64encode(out.getvalue()).decode()
"""

ORIGINAL_WRITER = """
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("original_docker", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
os.chdir(sys.argv[2])
module._write_dockerfile(module._load_config("config.yaml"), ".")
"""


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, capture_output=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def original_venv(work: pathlib.Path) -> pathlib.Path:
    """A virtual environment holding kservehelper 2.0.0 (without its serving dependencies)."""
    venv = work / "original-venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "kservehelper==2.0.0"])
    run([str(python), "-m", "pip", "install", "--quiet", "schema", "PyYAML"])
    return python


def original_docker_py(python: pathlib.Path) -> str:
    code = "import importlib.util; print(importlib.util.find_spec('kservehelper').origin)"
    init = run([str(python), "-I", "-c", code], cwd=str(python.parent)).stdout.strip()
    return str(pathlib.Path(init).parent / "docker.py")


def write_model(folder: pathlib.Path, config: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(MODEL_PY)
    (folder / "config.yaml").write_text(config)


def config_text(image: str, python_version: str, packages: list[str]) -> str:
    listed = "".join(f'    - "{p}"\n' for p in packages)
    return (
        f'image: "{image}"\nentrypoint: model.py\nbuild:\n'
        f'  python_version: "{python_version}"\n  python_packages:\n{listed}'
    )


class Subject:
    """One Dockerfile writer under test: how to (re)build its image."""

    def __init__(self, name: str, folder: pathlib.Path, docker: str) -> None:
        self.name, self.folder, self.docker = name, folder, docker
        self.image = f"kservehelper-bench/{name}:latest"

    def build(self, no_cache: bool = False) -> None:
        raise NotImplementedError

    def set_packages(self, packages: list[str]) -> None:
        raise NotImplementedError

    def size(self) -> int:
        out = run([self.docker, "image", "inspect", "--format", "{{.Size}}", self.image])
        return int(out.stdout.strip())


class ThisProject(Subject):
    def set_packages(self, packages: list[str]) -> None:
        write_model(
            self.folder, config_text(self.image, "3.11", ["kservehelper>=1.1.0", *packages])
        )

    def build(self, no_cache: bool = False) -> None:
        command = [sys.executable, "-c", "from kservehelper.cli import main; main()", "build"]
        command += [str(self.folder), "--docker", self.docker]
        run(command + (["--no-cache"] if no_cache else []))


class Original(Subject):
    def __init__(self, name: str, folder: pathlib.Path, docker: str, python: pathlib.Path) -> None:
        super().__init__(name, folder, docker)
        self.docker_py = original_docker_py(python)
        self.python = python

    def set_packages(self, packages: list[str]) -> None:
        # 2.0.0 has no kservehelper wheel of this project: it lists kserve itself.
        write_model(self.folder, config_text(self.image, "3.10", ["kserve==0.21.0", *packages]))
        run([str(self.python), "-I", "-c", ORIGINAL_WRITER, self.docker_py, str(self.folder)])

    def build(self, no_cache: bool = False) -> None:
        command = [self.docker, "build", "--platform=linux/amd64", "--network", "host"]
        command += ["-t", self.image, str(self.folder)]
        run(
            command + (["--no-cache"] if no_cache else []),
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )


def measure(subject: Subject, runs: int, prune_cache_mounts: bool) -> dict[str, float]:
    cold, code, package = [], [], []
    for _ in range(runs):
        subject.set_packages(PACKAGES)
        if prune_cache_mounts:
            subprocess.run(
                [subject.docker, "builder", "prune", "--force", "--filter", "type=exec.cachemount"],
                capture_output=True,
            )
        cold.append(timed(lambda: subject.build(no_cache=True)))
        model = subject.folder / "model.py"
        model.write_text(model.read_text() + f"\n# change {time.time()}\n")
        if isinstance(subject, Original):
            subject.set_packages(PACKAGES)  # 2.0.0 rewrites its Dockerfile on every build
        code.append(timed(subject.build))
        # A specifier never built before, so no earlier run's layer cache can answer it.
        subject.set_packages([*PACKAGES, f"{ADDED_PACKAGE}!=0.0.{time.time_ns()}"])
        package.append(timed(subject.build))
    return {
        "cold_s": statistics.median(cold),
        "code_change_s": statistics.median(code),
        "add_package_s": statistics.median(package),
        "size_mb": subject.size() / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--docker", default=os.environ.get("KSERVEHELPER_DOCKER", "docker"))
    parser.add_argument("--json", type=pathlib.Path, help="Also write the figures here.")
    args = parser.parse_args()
    docker = shutil.which(args.docker) or args.docker
    run([docker, "tag", STAND_IN, ORIGINAL_BASE])
    with tempfile.TemporaryDirectory(prefix="kservehelper-bench-") as tmp:
        work = pathlib.Path(tmp)
        from kservehelper.build.context import WHEEL_ENV, build_own_wheel

        # One wheel for the whole run: the working tree may change while it runs.
        os.environ[WHEEL_ENV] = str(build_own_wheel(work / "wheel"))
        python = original_venv(work)
        theirs = measure(Original("original", work / "original", docker, python), args.runs, False)
        ours = measure(ThisProject("this", work / "this", docker), args.runs, True)
    rows = [
        ("cold build (s)", "cold_s", "no slower"),
        ("rebuild after a code-only change (s)", "code_change_s", "-"),
        ("rebuild after adding one package (s)", "add_package_s", ">= 2x faster"),
        ("image size (MB)", "size_mb", "no larger"),
    ]
    print(f"runs: {args.runs} (medians); docker: {docker}")
    print("| measure | kservehelper 2.0.0 | this project | ratio (2.0.0 / this) | target |")
    print("|---|---|---|---|---|")
    for label, key, target in rows:
        ratio = theirs[key] / ours[key] if ours[key] else float("inf")
        print(f"| {label} | {theirs[key]:.1f} | {ours[key]:.1f} | {ratio:.2f} | {target} |")
    if args.json:
        args.json.write_text(json.dumps({"this": ours, "original": theirs}, indent=2))


if __name__ == "__main__":
    main()
