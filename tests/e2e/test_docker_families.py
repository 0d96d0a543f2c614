"""Every base family built end to end on the real engine, then run and asked over HTTP.

nvidia/cuda and NGC images cannot be pulled here: the sandbox tags local stand-ins laid out
like them (no Python and empty apt lists for cuda; an externally-managed system Python with
``PIP_CONSTRAINT`` pinning a preinstalled package for NGC). A build may reach the base image,
PyPI and the distro's apt repositories, nothing else: a ``git+`` package comes from a git
repository this test serves on 127.0.0.1 (dumb HTTP), a local wheel from the model folder.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import pathlib
import ssl
import subprocess
import threading
import uuid
import zipfile
from collections.abc import Iterator

import pytest

from kservehelper.build import container, docker
from kservehelper.build.project import PYTHON_MIRROR_ENV, build_project, secret_arguments
from kservehelper.errors import BuildError
from tests.e2e.conftest import cli, pinned_wheel, stand_in

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1500)]

CUDA_BASE = "nvidia/cuda:12.4.1-base-ubuntu22.04"  # what build.cuda "12.4" names
NGC_BASE = "nvcr.io/nvidia/pytorch:24.04-py3"  # what build.cuda "12.4" + ngc names

SEED_MODEL = """
import shutil
import subprocess
import sys


class Model:
    def load(self):
        import localpkg  # the local wheel
        import gitpkg  # the git+ URL
        import termcolor  # python3-termcolor, from apt, in the distro's site-packages

        self.found = {
            "python": "%d.%d" % sys.version_info[:2],
            "localpkg": localpkg.VALUE,
            "gitpkg": gitpkg.VALUE,
            "termcolor": termcolor.__file__,
            "git": shutil.which("git"),
            "add-apt-repository": shutil.which("add-apt-repository"),
        }

    def predict(self, text: str = "x") -> dict:
        return {"text": text, **self.found}
"""


def write_wheel(folder: pathlib.Path, name: str, version: str, module: str) -> pathlib.Path:
    """A minimal pure-Python wheel (``module`` as ``name/__init__.py``)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A git repository with an installable package, served over dumb HTTP on 127.0.0.1."""
    root = tmp_path_factory.mktemp("git")
    work = root / "work"
    (work / "gitpkg").mkdir(parents=True)
    (work / "gitpkg" / "__init__.py").write_text("VALUE = 'from git'\n")
    (work / "pyproject.toml").write_text(
        '[project]\nname = "gitpkg"\nversion = "0.1.0"\n'
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "gitpkg"], check=True)
    bare = root / "served" / "gitpkg.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    handler = functools.partial(_QuietHandler, directory=str(root / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/gitpkg.git"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def seed_image(
    buildkit_engine: docker.Engine,
    git_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[pathlib.Path, str, str]]:
    """The seed README's config shape on build.cuda, built once: (folder, image, build log)."""
    stand_in(buildkit_engine, "cuda", CUDA_BASE)
    tmp = tmp_path_factory.mktemp("seed")
    folder = tmp / "seed-model"
    folder.mkdir()
    (folder / "model.py").write_text(SEED_MODEL)
    write_wheel(folder, "localpkg", "1.0", "VALUE = 'from a local wheel'\n")
    config = {
        "build": {
            "python_version": "3.11",  # the stand-in's distro ships 3.11 (Ubuntu 22.04: 3.10)
            "cuda": "12.4",
            "commands": ["apt install -y software-properties-common"],
            "system_packages": ["git", "python3-termcolor"],
            "python_packages": [
                "kservehelper>=1.1.0",
                "localpkg-1.0-py3-none-any.whl",
                f"git+{git_server}",
            ],
        },
        "image": f"kservehelper-e2e/seed:{uuid.uuid4().hex[:8]}",
    }
    (folder / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    image = str(config["image"])
    with pinned_wheel(tmp):
        done = cli("build", str(folder), "--docker", buildkit_engine.binary)
    try:
        yield folder, image, done.stdout
    finally:
        docker.remove_image(buildkit_engine, image)


def test_cuda_seed_config_builds_from_the_distros_python(
    seed_image: tuple[pathlib.Path, str, str], buildkit_engine: docker.Engine
) -> None:
    folder, image, log = seed_image
    assert "ghcr.io" not in log and "COPY --from" not in log
    # Detected at build time and taken from apt, not downloaded (no /opt/python).
    script = "readlink -f /opt/venv/bin/python; test -e /opt/python && echo DOWNLOADED || true"
    where = docker.run_docker(buildkit_engine, "run", "--rm", image, "bash", "-c", script)
    assert where.strip() == "/usr/bin/python3.11"
    done = cli("predict", str(folder), "--image", image, "-i", "text=hi")
    answer = json.loads(done.stdout)
    assert answer["text"] == "hi" and answer["python"] == "3.11"
    assert answer["localpkg"] == "from a local wheel" and answer["gitpkg"] == "from git"
    assert answer["termcolor"].startswith("/usr/lib/python3/dist-packages/")
    assert answer["git"] and answer["add-apt-repository"]  # apt in commands worked


def test_app_is_owned_by_root_and_read_only_for_the_model(
    seed_image: tuple[pathlib.Path, str, str], buildkit_engine: docker.Engine
) -> None:
    _, image, _ = seed_image
    script = "stat -c '%U %a' /app /app/model.py; touch /app/x 2>/dev/null && echo WRITABLE; id -u"
    output = docker.run_docker(buildkit_engine, "run", "--rm", image, "bash", "-c", script)
    assert output.split("\n")[:3] == ["root 755", "root 644", "10001"]
    assert "WRITABLE" not in output


def test_schema_label_is_read_inside_the_image(
    seed_image: tuple[pathlib.Path, str, str], buildkit_engine: docker.Engine
) -> None:
    _, image, log = seed_image
    labels = docker.image_labels(buildkit_engine, image)
    schema = json.loads(labels["ai.kservehelper.input-schema"])
    assert set(schema["input"]["properties"]) == {"text"}
    assert "reading the model's schema inside the image" in log


def test_cuda_python_the_distro_lacks_fails_clearly(
    buildkit_engine: docker.Engine, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in(buildkit_engine, "cuda", CUDA_BASE)
    folder = tmp_path / "py312"
    folder.mkdir()
    (folder / "model.py").write_text(
        "class Model:\n    def predict(self) -> str:\n        return 'x'\n"
    )
    (folder / "config.yaml").write_text('build:\n  cuda: "12.4"\n  python_version: "3.12"\n')
    # A mirror that refuses connections: the download fails fast, and says how to fix it.
    monkeypatch.setenv(PYTHON_MIRROR_ENV, f"http://127.0.0.1:{container.free_port()}/mirror")
    with pinned_wheel(tmp_path), pytest.raises(BuildError) as caught:
        build_project(
            folder, tag="kservehelper-e2e/py312:1", docker_binary=buildkit_engine.binary, echo=None
        )
    message = str(caught.value)
    lines = message.splitlines()
    assert lines[1].startswith("kservehelper: error: could not download Python 3.12.8")
    assert PYTHON_MIRROR_ENV in message and "python_version to the distro's Python (3.11" in message
    assert len(lines) < 10 and "Traceback" not in message  # the explanation, not a log dump


def test_ngc_keeps_its_packages_and_honours_its_constraints(
    buildkit_engine: docker.Engine, tmp_path: pathlib.Path
) -> None:
    stand_in(buildkit_engine, "ngc", NGC_BASE)
    folder = tmp_path / "ngc"
    folder.mkdir()
    (folder / "model.py").write_text(
        "import ngc_preinstalled\n\n\nclass Model:\n"
        "    def predict(self) -> str:\n        return ngc_preinstalled.VERSION\n"
    )
    config = 'build:\n  cuda: "12.4"\n  ngc: true\n  python_packages: [ngc-preinstalled, six]\n'
    (folder / "config.yaml").write_text(config)
    image = f"kservehelper-e2e/ngc:{uuid.uuid4().hex[:8]}"
    with pinned_wheel(tmp_path):
        build_project(folder, tag=image, docker_binary=buildkit_engine.binary, echo=None)
        try:
            with container.running_model(buildkit_engine, image, "ngc") as url:
                [line] = container.predict_over_http(url, "ngc", {})
            assert json.loads(line)["output"] == "1.0.0"  # the image's own package, untouched
            # Its constraint file pins ngc-preinstalled==1.0.0: asking for another version fails.
            (folder / "config.yaml").write_text(
                config.replace("ngc-preinstalled,", "ngc-preinstalled==2.0,")
            )
            with pytest.raises(BuildError, match="failed at step"):
                build_project(
                    folder, tag=image + "-x", docker_binary=buildkit_engine.binary, echo=None
                )
        finally:
            docker.remove_image(buildkit_engine, image)


def test_custom_base_image_without_python_gets_the_distros(
    buildkit_engine: docker.Engine, tmp_path: pathlib.Path
) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "model.py").write_text(
        "import sys\n\n\nclass Model:\n    def predict(self) -> str:\n"
        "        return sys.executable\n"
    )
    (folder / "config.yaml").write_text("build:\n  base_image: debian:bookworm-slim\n")
    image = f"kservehelper-e2e/custom:{uuid.uuid4().hex[:8]}"
    # This base does not trust the machine's TLS-inspecting proxy (the sandbox's Python
    # images do): --ca-cert hands the bundle to every network step, and to no layer.
    ca_bundle = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
    assert ca_bundle, "no CA bundle on this machine"
    secrets = secret_arguments([], pathlib.Path(ca_bundle))
    with pinned_wheel(tmp_path):
        build_project(
            folder, tag=image, docker_binary=buildkit_engine.binary, secrets=secrets, echo=None
        )
    try:
        script = "readlink -f /opt/venv/bin/python"
        where = docker.run_docker(buildkit_engine, "run", "--rm", image, "bash", "-c", script)
        assert where.strip() == "/usr/bin/python3.11"  # from apt, detected at build time
        with container.running_model(buildkit_engine, image, "custom") as url:
            [line] = container.predict_over_http(url, "custom", {})
        assert json.loads(line)["output"] == "/opt/venv/bin/python"
    finally:
        docker.remove_image(buildkit_engine, image)
