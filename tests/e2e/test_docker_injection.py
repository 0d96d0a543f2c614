"""Hostile config.yaml values, built for real: each command entry runs as one script, env
values arrive exactly, and nothing adds an instruction (no USER, ENTRYPOINT or LABEL change)."""

from __future__ import annotations

import json
import pathlib
import uuid

import pytest
import yaml

from kservehelper.build import container, docker
from kservehelper.build.project import build_project
from tests.e2e.conftest import pinned_wheel

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

MODEL = """
import os


class Model:
    def predict(self) -> dict:
        marks = sorted(os.listdir("/opt/marks"))
        return {"marks": marks, "env": {k: os.environ.get(k) for k in "ABCDEF"}}
"""
COMMANDS = [
    # A newline that once added instructions; here it is the second line of one script.
    'mkdir -p /opt/marks\ntouch /opt/marks/one\nENTRYPOINT ["/bin/sh"] 2>/dev/null || true',
    "touch /opt/marks/two; echo trailing \\",  # a trailing backslash swallows nothing
    "touch '/opt/marks/$(id)' \"/opt/marks/quote'd\"",
    "LABEL evil=1 2>/dev/null || touch /opt/marks/label-line",
    "USER root 2>/dev/null || touch /opt/marks/user-line",
]
ENV = {
    "A": "ends with backslash \\",
    "B": "$HOME stays ${PATH} literally `id`",
    "C": "two\nlines\nUSER root",
    "D": 'it\'s "quoted"',
    "E": "tab\there",
    "F": "",
}


def test_hostile_values_build_and_arrive_exactly(
    buildkit_engine: docker.Engine, tmp_path: pathlib.Path
) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "model.py").write_text(MODEL)
    (folder / "req$(touch pwned).txt").write_text("six\n")
    config = {
        "name": "hostile",
        "build": {
            "python_requirements": ["req$(touch pwned).txt"],
            "python_packages": ['tomli-w ; python_version >= "3"'],
            "commands": COMMANDS,
            "env": ENV,
        },
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    image = f"kservehelper-e2e/hostile:{uuid.uuid4().hex[:8]}"
    with pinned_wheel(tmp_path):
        outcome = build_project(folder, tag=image, docker_binary=buildkit_engine.binary, echo=None)
    try:
        info = docker.inspect_image(buildkit_engine, image)["Config"]
        assert isinstance(info, dict)
        assert info["User"] == "10001:10001" and info["Entrypoint"] is None
        assert info["Cmd"][:3] == ["kservehelper", "serve", "/app"]
        assert "evil" not in info["Labels"]
        env = dict(item.split("=", 1) for item in info["Env"])
        assert {name: env[name] for name in ENV} == ENV
        assert outcome.dockerfile.count('\nRUN ["/bin/bash", "-eo", "pipefail", "-c", ') == 5
        with container.running_model(buildkit_engine, image, "hostile") as url:
            [line] = container.predict_over_http(url, "hostile", {})
        answer = json.loads(line)
        assert answer["marks"] == sorted(
            ["one", "two", "$(id)", "quote'd", "label-line", "user-line"]
        )
        assert answer["env"] == ENV
        listing = docker.run_docker(buildkit_engine, "run", "--rm", image, "ls", "/")
        assert "pwned" not in listing
    finally:
        docker.remove_image(buildkit_engine, image)
