"""``kservehelper deploy`` as a user runs it: stdout for ``| kubectl apply -f -``, files, errors."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import yaml

from kservehelper.config.locate import LAST_PUSH_FILE
from tests.conftest import EXAMPLES, run_cli
from tests.test_deploy import DIGEST, assert_valid_manifest, container


def test_help_has_examples() -> None:
    result = run_cli("deploy", "--help")
    assert result.returncode == 0
    assert "kservehelper deploy . | kubectl apply -f -" in result.stdout


@pytest.mark.parametrize("output_format", ["yaml", "json"])
def test_prints_a_valid_manifest(output_format: str) -> None:
    result = run_cli("deploy", str(EXAMPLES / "gpu-style"), "--format", output_format)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    manifest = (
        json.loads(result.stdout) if output_format == "json" else yaml.safe_load(result.stdout)
    )
    assert_valid_manifest(manifest)
    assert manifest["metadata"]["name"] == "gpu-style"


def test_runs_in_the_model_folder_and_uses_the_pushed_digest(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "gpu-style"
    shutil.copytree(EXAMPLES / "gpu-style", folder)
    repository = "127.0.0.1:5000/kservehelper-examples/gpu-style"
    record = {
        "image": f"{repository}:latest",
        "digest": DIGEST,
        "reference": f"{repository}@{DIGEST}",
    }
    (folder / LAST_PUSH_FILE).parent.mkdir()
    (folder / LAST_PUSH_FILE).write_text(json.dumps(record), encoding="utf-8")
    result = run_cli("deploy", cwd=folder)  # DIR defaults to "."
    assert result.returncode == 0, result.stderr
    assert container(yaml.safe_load(result.stdout))["image"] == f"{repository}@{DIGEST}"


def test_writes_the_output_file(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "isvc.json"
    result = run_cli("deploy", str(EXAMPLES / "hello"), "-f", "json", "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert_valid_manifest(json.loads(target.read_text(encoding="utf-8")))


def test_invalid_deploy_section_fails_before_printing(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "gpu-style"
    shutil.copytree(EXAMPLES / "gpu-style", folder)
    config = folder / "config.yaml"
    text = config.read_text(encoding="utf-8").replace("memory: 16Gi", "memory: 16GB")
    config.write_text(text.replace("min_replicas:", "min_replica:"), encoding="utf-8")
    result = run_cli("deploy", str(folder))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "deploy.resources.memory" in result.stderr and "4Gi" in result.stderr
    assert "did you mean 'min_replicas'?" in result.stderr


def test_bad_format_and_missing_image_warning(tmp_path: pathlib.Path) -> None:
    result = run_cli("deploy", str(EXAMPLES / "hello"), "--format", "toml")
    assert result.returncode == 2
    assert "yaml or json" in result.stderr
    folder = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", folder)
    config = folder / "config.yaml"
    lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    config.write_text("".join(x for x in lines if not x.startswith("image:")), encoding="utf-8")
    result = run_cli("deploy", str(folder))
    assert result.returncode == 0
    assert "warning:" in result.stderr and "no image set" in result.stderr
    assert container(yaml.safe_load(result.stdout))["image"] == "hello:latest"


def test_kserve_transformer_arguments_reach_kservehelper_serve(tmp_path: pathlib.Path) -> None:
    import typer.main

    from kservehelper.cli import app
    from tests.test_deploy import write_pair

    manifest = yaml.safe_load(run_cli("deploy", str(write_pair(tmp_path))).stdout)
    command = container(manifest, "transformer")["command"]
    # What KServe's controller appends (CustomTransformer.GetContainer), in its order.
    kserve_args = ["--model_name", "pair", "--predictor_host", "pair-predictor.default"]
    kserve_args += ["--http_port", "8080"]
    assert command[:2] == ["kservehelper", "serve"]
    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    context = serve.make_context("serve", [*command[2:], *kserve_args])
    assert context.params["predictor_host"] == "pair-predictor.default"
