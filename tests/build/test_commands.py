"""The image commands as a user types them (no Docker needed): init, config-schema, dockerfile."""

from __future__ import annotations

import base64
import json
import pathlib

from typer.testing import CliRunner

from kservehelper.build.project import parse_image_inputs
from kservehelper.cli import app
from kservehelper.config.project import load_config

runner = CliRunner()


def test_init_scaffolds_a_folder_that_loads(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "My Model"
    result = runner.invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in folder.iterdir()}
    assert names == {"model.py", "config.yaml", "requirements.txt", ".dockerignore"}
    config = load_config(folder)
    assert config.name == "my-model" and config.build.python_requirements == ["requirements.txt"]
    again = runner.invoke(app, ["init", str(folder)])
    assert again.exit_code == 1 and "--force" in again.output


def test_config_schema_is_json() -> None:
    result = runner.invoke(app, ["config-schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert "build" in schema["properties"] and "class" in schema["properties"]


def test_dockerfile_for_each_builder(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "m"
    runner.invoke(app, ["init", str(folder)])
    legacy = runner.invoke(app, ["dockerfile", str(folder), "--builder", "legacy"])
    buildkit = runner.invoke(app, ["dockerfile", str(folder), "--builder", "buildkit"])
    assert legacy.exit_code == 0 and buildkit.exit_code == 0, legacy.output + buildkit.output
    assert "--mount" not in legacy.output and "--mount=type=cache" in buildkit.output


def test_config_errors_exit_nonzero_with_the_key(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "m"
    runner.invoke(app, ["init", str(folder)])
    (folder / "config.yaml").write_text("build:\n  sytem_packages: [git]\n")
    result = runner.invoke(app, ["dockerfile", str(folder)])
    assert result.exit_code == 1 and "did you mean 'system_packages'" in result.output


def test_image_inputs_are_typed_by_the_schema(tmp_path: pathlib.Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG fake")
    schema = {
        "input": {
            "properties": {
                "text": {"type": "string", "x-kind": "str"},
                "count": {"type": "integer", "x-kind": "int"},
                "image": {"type": "string", "format": "uri", "x-kind": "Path"},
                "raw": {"type": "string", "x-kind": "str"},
                "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}], "x-kind": "str"},
            }
        }
    }
    payload = parse_image_inputs(
        ["text=42", "count=3", f"image=@{picture}", f"raw=@{picture}", "maybe=7"], schema
    )
    encoded = base64.b64encode(picture.read_bytes()).decode()
    assert payload == {
        "text": "42",
        "count": 3,
        "image": f"data:image/png;base64,{encoded}",
        "raw": encoded,
        "maybe": "7",
    }


def test_image_inputs_type_lists_as_local_predict_does() -> None:
    schema = {
        "input": {
            "properties": {
                "tags": {"type": "array", "items": {"type": "string"}, "x-kind": "list[str]"},
                "sizes": {"type": "array", "items": {"type": "integer"}, "x-kind": "list[int]"},
                "maybe_tags": {
                    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                    "x-kind": "list[str]",
                },
            }
        }
    }
    assert parse_image_inputs(['tags=["a","b"]'], schema) == {"tags": ["a", "b"]}
    assert parse_image_inputs(["tags=a", "tags=b"], schema) == {"tags": ["a", "b"]}
    assert parse_image_inputs(["sizes=[1,2]", "maybe_tags=x"], schema) == {
        "sizes": [1, 2],
        "maybe_tags": ["x"],
    }
    assert parse_image_inputs(["sizes=3", "sizes=4"], schema) == {"sizes": [3, 4]}


def test_dockerfile_never_imports_the_model(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "m"
    runner.invoke(app, ["init", str(folder)])
    marker = tmp_path / "imported"
    (folder / "model.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran on the host')\n\n"
        "class Model:\n    def predict(self) -> str:\n        return 'x'\n"
    )
    result = runner.invoke(app, ["dockerfile", str(folder), "--builder", "buildkit"])
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert "ai.kservehelper.input-schema" not in result.output  # added after the build
