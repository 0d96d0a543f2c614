"""The command line as a user drives it: predict in-process, schema, help, version."""

from __future__ import annotations

import base64
import json
import pathlib
import subprocess
import sys

import pytest
from PIL import Image

from kservehelper import __version__
from tests.conftest import EXAMPLES, REPO, TEST_MODELS, run_cli


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kservehelper {__version__}"


def _commands() -> list[str]:
    import typer.main

    from kservehelper.cli import app

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_examples(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout
    assert "kservehelper " + command in result.stdout


def test_predict_prints_json(tmp_path: pathlib.Path) -> None:
    result = run_cli(
        "predict",
        str(EXAMPLES / "hello"),
        "-i",
        "name=Ada",
        "-i",
        "times=2",
        "-i",
        "excitement=0.1",
        "-i",
        "tags=a",
        "-i",
        "tags=b",
        "-i",
        "shout=true",
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["greeting"] == "HELLO, ADA. HELLO, ADA."
    assert body["tags"] == ["a", "b"]
    assert "running_time" in body


def test_predict_validation_errors_match_the_server_and_exit_non_zero() -> None:
    result = run_cli("predict", str(EXAMPLES / "hello"), "-i", "name=Ada", "-i", "times=9")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: invalid input 'times': Input should be less than or equal to 5"
    )
    result = run_cli("predict", str(EXAMPLES / "hello"), "-i", "nme=Ada")
    assert result.returncode == 1
    assert "unknown input 'nme'; valid inputs are: name, times" in result.stderr
    result = run_cli("predict", str(EXAMPLES / "hello"), "-i", "name")
    assert result.returncode == 1
    assert "write inputs as name=value" in result.stderr


def test_predict_reads_files_and_writes_outputs(tmp_path: pathlib.Path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), "red").save(photo)
    out = tmp_path / "out"
    result = run_cli(
        "predict",
        str(EXAMPLES / "blur-image"),
        "-i",
        f"image=@{photo}",
        "-i",
        "radius=1",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    [written] = json.loads(result.stdout)["output"]
    assert pathlib.Path(written) == out / "image.jpg"
    assert Image.open(written).format == "JPEG"
    # The model's ValueError is reported as the model said it.
    result = run_cli("predict", str(EXAMPLES / "blur-image"))
    assert result.returncode == 1
    assert result.stderr.strip() == "error: The input image is not set"


def test_predict_path_inputs_take_local_files_and_outputs_go_to_the_current_folder(
    tmp_path: pathlib.Path,
) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"abc")
    result = run_cli(
        "predict",
        str(TEST_MODELS / "behaviours"),
        "--class",
        "Files",
        "-i",
        f"source=@{source}",
        "-i",
        "copies=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy0.bin", "copy1.bin", "in.bin"]
    assert (tmp_path / "copy1.bin").read_bytes() == b"abc"


def test_predict_str_input_from_file_is_base64(tmp_path: pathlib.Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hi")
    result = run_cli("predict", str(EXAMPLES / "hello"), "-i", f"name=@{note}")
    body = json.loads(result.stdout)
    assert body["greeting"] == f"Hello, {base64.b64encode(b'hi').decode()}!"


def test_predict_prints_stream_items_as_they_arrive(tmp_path: pathlib.Path) -> None:
    gate = tmp_path / "gate"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kservehelper",
            "predict",
            str(TEST_MODELS / "behaviours"),
            "--class",
            "Streams",
            "-i",
            "count=3",
            "-i",
            f"gate={gate}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    try:
        assert json.loads(process.stdout.readline()) == {"n": 0}
        assert process.poll() is None  # still waiting for the gate: nothing was buffered
        gate.touch()
        rest = [json.loads(line) for line in process.stdout]
        assert rest == [{"n": 1}, {"n": 2}]
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()


def test_predict_seed_streaming_example_both_styles() -> None:
    folder = str(EXAMPLES / "streaming")
    result = run_cli("predict", folder, "-i", "repeat=2", "-i", "delay=0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['"Hello World!"', '"Hello World!"']
    result = run_cli("predict", folder, "--method", "generate", "-i", "repeat=1", "-i", "delay=0")
    assert result.stdout.splitlines() == ['{"index":0,"text":"Hello World!"}']


def test_schema_command_prints_the_server_document() -> None:
    result = run_cli("schema", str(EXAMPLES / "blur-image"))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["name"] == "blur-image"
    assert document["output"] == {"kind": "file"}
    assert document["input"]["properties"]["radius"]["default"] == 2.0


def test_missing_folder_and_entrypoint_errors(tmp_path: pathlib.Path) -> None:
    result = run_cli("schema", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "no such folder" in result.stderr
    result = run_cli("schema", str(tmp_path))
    assert result.returncode == 1
    assert "model.py does not exist" in result.stderr
    (tmp_path / "config.yaml").write_text("build: [\n")
    result = run_cli("schema", str(tmp_path))
    assert "not valid YAML" in result.stderr


def test_config_schema_help_shows_the_line_to_paste_verbatim() -> None:
    result = run_cli("config-schema", "--help")
    assert result.returncode == 0
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "# yaml-language-server: $schema=config.schema.json" in lines
    assert "kservehelper config-schema > config.schema.json" in lines


def test_debug_is_a_global_option() -> None:
    assert "--debug" in run_cli("--help").stdout


def test_predict_names_the_methods_a_model_has() -> None:
    result = run_cli("predict", str(EXAMPLES / "hello"), "--method", "generate")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: the model has no generate() method; use --method with: predict"
    )


def test_an_unexpected_failure_is_one_line_and_debug_shows_it(tmp_path: pathlib.Path) -> None:
    """A bug (an exception no command expects) is one line too, asking for a report."""
    code = (
        "from kservehelper.cli import app, main\n"
        "@app.command()\n"
        "def explode() -> None:\n"
        "    '''Example: kservehelper explode'''\n"
        "    raise RuntimeError('a bug')\n"
        "main()\n"
    )
    script = tmp_path / "explode.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script), "explode"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: unexpected RuntimeError: a bug "
        "(`kservehelper --debug ...` shows the traceback; please report it)"
    )
    result = subprocess.run(
        [sys.executable, str(script), "explode", "--debug"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "raise RuntimeError('a bug')" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: unexpected RuntimeError: a bug"


@pytest.mark.parametrize(
    ("argv", "hoisted"),
    [
        (["predict", ".", "--debug"], ["--debug", "predict", "."]),
        (["--debug", "schema"], ["--debug", "schema"]),
        (["predict", ".", "-i", "text=--debug"], ["predict", ".", "-i", "text=--debug"]),
        (["serve", ".", "--", "--debug"], ["serve", ".", "--", "--debug"]),
    ],
)
def test_debug_after_the_command_moves_in_front(argv: list[str], hoisted: list[str]) -> None:
    from kservehelper.cli.app import hoist_debug_flag

    assert hoist_debug_flag(argv) == hoisted


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["predict", ".", "--imgae", "x"], "error: No such option: --imgae"),
        (["nosuch"], "error: No such command 'nosuch'. (`kservehelper --help` shows the usage)"),
        (["serve", "--port", "abc"], "error: Invalid value for '--port'"),
    ],
)
def test_usage_mistakes_are_one_line(arguments: list[str], expected: str) -> None:
    result = run_cli(*arguments)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(expected)
    assert result.stderr.strip().endswith("--help` shows the usage)")


def test_no_arguments_shows_the_help() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "Usage: kservehelper" in result.stdout + result.stderr
    assert "predict" in result.stdout + result.stderr


def test_an_os_error_is_one_line_without_a_bug_report(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("init", str(blocker / "model"))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "please report" not in line
