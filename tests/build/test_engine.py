"""The docker CLI's failure modes, each one line with a hint (no daemon needed)."""

from __future__ import annotations

import pathlib

import pytest

from kservehelper.build import docker
from kservehelper.build.project import secret_arguments, secret_ids
from kservehelper.errors import BuildError


def test_missing_client_names_the_setting() -> None:
    with pytest.raises(BuildError, match="KSERVEHELPER_DOCKER") as caught:
        docker.detect_engine("kservehelper-no-such-docker")
    assert "\n" not in str(caught.value)


def test_unreachable_daemon_says_how_to_start_one(monkeypatch: pytest.MonkeyPatch) -> None:
    if docker.shutil.which("docker") is None:
        pytest.skip("no docker client installed")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/kservehelper.sock")
    docker._detect.cache_clear()
    try:
        with pytest.raises(BuildError, match="not reachable") as caught:
            docker.detect_engine("docker")
    finally:
        docker._detect.cache_clear()
    assert "hint" in str(caught.value) and "DOCKER_HOST" in str(caught.value)
    assert "shared" not in str(caught.value)  # no development paths in a user's message


def test_secret_arguments(tmp_path: pathlib.Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    arguments = secret_arguments(["id=pip.conf,src=pip.conf"], ca)
    assert secret_ids(arguments) == ("pip.conf", "ca-cert")
    with pytest.raises(BuildError, match="id=NAME"):
        secret_arguments(["pip.conf"], None)


@pytest.mark.parametrize(
    ("stderr", "cause"),
    [
        (
            "Unable to find image 'r/x:1' locally\ndocker: Error response from daemon: manifest "
            "for r/x:1 not found: manifest unknown: manifest unknown.\nSee 'docker run --help'.",
            "manifest unknown",
        ),
        (
            "docker: Error response from daemon: pull access denied for x, repository does not "
            "exist or may require 'docker login'.\nRun 'docker run --help' for more information",
            "pull access denied",
        ),
        ("write /var/lib/docker/tmp/x: no space left on device", "disk is full"),
    ],
)
def test_daemon_failures_are_one_line_with_the_cause(stderr: str, cause: str) -> None:
    message = str(docker.daemon_failure("docker run r/x:1", stderr))
    assert "\n" not in message and cause in message and "hint:" in message
    assert "--help" not in message
