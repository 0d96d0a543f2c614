"""A newcomer's mistakes, as they make them: each ends in one `error:` line that says where and
what to do, with no traceback (`--debug` shows it), and nothing slow runs first."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from kservehelper.errors import ServeError
from kservehelper.serving.ports import check_port_free
from tests.conftest import EXAMPLES, REPO, free_port, run_cli, start_server

GOOD_MODEL = """\
import pathlib

from kservehelper import KServeModel, Input


class Model:
    def load(self):
        pathlib.Path("loaded").write_text("load() ran")

    def predict(self, x: int = Input(default=1)) -> dict:
        return {"x": x}


if __name__ == "__main__":
    KServeModel.serve("mistakes", Model)
"""


def model_folder(tmp_path: pathlib.Path, source: str) -> pathlib.Path:
    folder = tmp_path / "mistakes"
    folder.mkdir(exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(source))
    return folder


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The command failed with exactly one `error:` line containing ``expected``."""
    assert result.returncode != 0, result.stdout
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    assert "../shared" not in lines[0]
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something is listening on (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# -- the model's code ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "schema", "serve"])
def test_a_syntax_error_in_model_py_is_one_line_with_file_and_line(
    tmp_path: pathlib.Path, command: str
) -> None:
    folder = model_folder(tmp_path, "class Model:\n    def predict(self, x: int = 1) -> int\n")
    result = run_cli(command, "mistakes", cwd=tmp_path)
    assert_one_line(result, "mistakes/model.py:2: SyntaxError", "fix the code there")
    assert not (folder / "loaded").exists()


def test_a_missing_package_names_the_import_line_and_the_fix(tmp_path: pathlib.Path) -> None:
    model_folder(tmp_path, "import os\nimport not_installed_anywhere\n" + GOOD_MODEL)
    for command in ("predict", "schema", "serve"):
        line = assert_one_line(
            run_cli(command, "mistakes", cwd=tmp_path),
            "mistakes/model.py:2: no module named 'not_installed_anywhere'",
            "install",
        )
        assert "--debug" not in line  # the line says it all


def test_an_exception_while_importing_points_at_the_users_line(tmp_path: pathlib.Path) -> None:
    source = GOOD_MODEL + "settings = {}\nTHRESHOLD = settings['threshold']\n"
    model_folder(tmp_path, source)
    number = source.splitlines().index("THRESHOLD = settings['threshold']") + 1
    line = assert_one_line(
        run_cli("schema", "mistakes", cwd=tmp_path),
        f"mistakes/model.py:{number}: importing mistakes/model.py raised KeyError: 'threshold'",
    )
    assert "kservehelper --debug" in line


def test_a_failing_load_is_one_line_and_debug_shows_the_traceback(tmp_path: pathlib.Path) -> None:
    model_folder(
        tmp_path,
        """\
        class Model:
            def load(self):
                self.weights = open("weights.bin").read()

            def predict(self, x: int = 1) -> int:
                return x
        """,
    )
    assert_one_line(
        run_cli("predict", "mistakes", cwd=tmp_path),
        "mistakes/model.py:3: load() raised FileNotFoundError",
        "weights.bin",
    )
    for arguments in (("--debug", "predict", "mistakes"), ("predict", "mistakes", "--debug")):
        debug = run_cli(*arguments, cwd=tmp_path)
        assert debug.returncode == 1
        assert "Traceback" in debug.stderr
        assert 'open("weights.bin")' in debug.stderr  # the user's own line, in the traceback
        assert debug.stderr.strip().splitlines()[-1].startswith("error: mistakes/model.py:3:")


def test_a_failing_predict_is_located_in_the_model(tmp_path: pathlib.Path) -> None:
    model_folder(
        tmp_path,
        """\
        class Model:
            def predict(self, x: int = 1) -> float:
                return 1 / (x - 1)
        """,
    )
    assert_one_line(
        run_cli("predict", "mistakes", cwd=tmp_path),
        "mistakes/model.py:3: predict() raised ZeroDivisionError: division by zero",
    )
    ok = run_cli("predict", "mistakes", "-i", "x=3", cwd=tmp_path)
    assert ok.returncode == 0 and '"output": 0.5' in ok.stdout


def test_serve_reports_a_failing_load_in_one_line(tmp_path: pathlib.Path) -> None:
    model_folder(
        tmp_path,
        """\
        class Model:
            def load(self):
                raise RuntimeError("CUDA is not available")

            def predict(self, x: int = 1) -> int:
                return x
        """,
    )
    port = str(free_port())
    result = run_cli("serve", "mistakes", "--host", "127.0.0.1", "--port", port, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: mistakes/model.py:3: the model could not be served")
    assert "RuntimeError: CUDA is not available" in last


# -- serve's command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--prot", "8080"], "no such option: --prot (did you mean --port"),
        (["--prot=8080"], "no such option: --prot (did you mean --port"),
        (["--hots", "127.0.0.1"], "no such option: --hots (did you mean --host"),
        (["--max-concurency", "2"], "did you mean --max-concurrency"),
        (["--predictor_protocl", "v2"], "did you mean --predictor_protocol"),
        (["--predictor_protocol", "v9"], "--predictor_protocol: invalid choice: 'v9'"),
        (["--grpc_port", "many"], "--grpc_port: invalid int value: 'many'"),
        (["surplus"], "unexpected argument 'surplus'"),
    ],
)
def test_serve_flag_mistakes_are_one_line_not_kserves_usage(
    arguments: list[str], expected: str
) -> None:
    folder = str(EXAMPLES / "hello")
    result = run_cli("serve", folder, *arguments)
    line = assert_one_line(result, expected)
    assert result.returncode == 2
    assert "usage:" not in result.stderr
    assert "kservehelper serve --help" in line or ":" in expected


def test_kserve_flags_still_pass_through(tmp_path: pathlib.Path) -> None:
    """KServe's own flags (the ones its controller gives a container) reach KServe."""
    http, grpc = free_port(), free_port()
    server = start_server(
        [
            *(sys.executable, "-m", "kservehelper", "serve", str(EXAMPLES / "hello")),
            *("--host", "127.0.0.1", "--port", str(http)),
            *("--enable_grpc", "true", "--grpc_port", str(grpc)),
            *("--enable_docs_url=true", "--predictor_protocol", "v2"),
        ],
        "hello",
        tmp_path / "server.log",
        http,
    )
    try:
        assert httpx.get(server.url + "/docs").status_code == 200
        with pytest.raises(ServeError, match="already in use"):  # gRPC listens there
            check_port_free("127.0.0.1", grpc, what="gRPC port", fix="")
    finally:
        server.stop()


# -- ports: checked before load() -----------------------------------------------------------


def test_serve_finds_a_busy_port_before_loading_the_model(
    tmp_path: pathlib.Path, busy_port: int
) -> None:
    folder = model_folder(tmp_path, GOOD_MODEL)
    result = run_cli(
        "serve", "mistakes", "--host", "127.0.0.1", "--port", str(busy_port), cwd=tmp_path
    )
    assert_one_line(result, f"HTTP port {busy_port} on 127.0.0.1 is already in use", "--port N")
    assert not (folder / "loaded").exists()


def test_python_model_py_finds_a_busy_port_before_loading_the_model(
    tmp_path: pathlib.Path, busy_port: int
) -> None:
    folder = model_folder(tmp_path, GOOD_MODEL)
    env = {**os.environ, "KSERVEHELPER_HOST": "127.0.0.1"}
    result = subprocess.run(
        [sys.executable, "model.py", "--http_port", str(busy_port)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=120,
    )
    assert_one_line(result, f"HTTP port {busy_port} on 127.0.0.1 is already in use")
    assert not (folder / "loaded").exists()
    # gRPC (on by default for `python model.py`) too.
    http = free_port()
    result = subprocess.run(
        [sys.executable, "model.py", "--http_port", str(http), "--grpc_port", str(busy_port)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
        timeout=120,
    )
    assert_one_line(result, f"gRPC port {busy_port} on 127.0.0.1 is already in use")
    assert not (folder / "loaded").exists()


def test_no_development_paths_in_the_package() -> None:
    """Messages must not send a user to this repository's CI tooling."""
    package = REPO / "kservehelper"
    offenders = [
        str(path.relative_to(REPO))
        for path in package.rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".j2", ".html", ".js", "")
        and "shared/tools" in path.read_text(errors="replace")
    ]
    assert offenders == []
