"""Cold start: import time, and process start to ready, against raw KServe in the same run.

  import          `python -X importtime -c "import kservehelper"` (and of KServeModel, which
                  imports KServe), cumulative microseconds of the top-level import
  raw KServe      `python benchmarks/raw_kserve.py --http_port N`: start to 200 on
                  /v1/models/noop
  python model.py the no-op model (benchmarks/models/noop) started the seed's way
  serve           `kservehelper serve benchmarks/models/noop` (what an image runs)
  docker run      with --image IMAGE: `docker run --network host IMAGE` to 200 on the model's
                  readiness (build it first: `kservehelper build examples/blur-image`)

kservehelper's modules are byte-compiled first, as installing a package does (pip and the image's
`uv pip install --compile-bytecode`): run from a checkout on a machine that sets
PYTHONDONTWRITEBYTECODE=1, every process would otherwise compile them from source (~0.1 s),
while KServe's installed modules load from bytecode.

Rounds are interleaved; medians. Usage:
  python benchmarks/cold_start.py [--rounds 5] [--image TAG --image-model NAME] [--json out.json]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import pathlib
import re
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import kservehelper  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def import_seconds(statement: str) -> float:
    """Cumulative import time of the first module ``statement`` imports (-X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    module = statement.split()[1]
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s?(\S+)$", line)
        if match and match.group(2) == module:
            return int(match.group(1)) / 1e6
    raise RuntimeError(f"no import time for {module}:\n{result.stderr[-2000:]}")


def seconds_to_ready(
    command: list[str], url: str, timeout: float = 120, cleanup: list[str] | None = None
) -> float:
    """Start ``command``, poll ``url`` every 5 ms until it answers 200; the seconds it took."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=1) as client:
            while time.perf_counter() - began < timeout:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited with {process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - began
                time.sleep(0.005)
        raise RuntimeError(f"{command} not ready after {timeout}s")
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if cleanup:
            subprocess.run(cleanup, capture_output=True)


def start_commands(docker: str, image: str | None, image_model: str) -> dict[str, Any]:
    noop = HERE / "models" / "noop"

    def raw(port: int) -> list[str]:
        return [sys.executable, str(HERE / "raw_kserve.py"), "--http_port", str(port),
                "--enable_grpc", "false"]  # fmt: skip

    def model_py(port: int) -> list[str]:
        return [sys.executable, str(noop / "model.py"), "--http_port", str(port),
                "--enable_grpc", "false"]  # fmt: skip

    def serve(port: int) -> list[str]:
        return [sys.executable, "-m", "kservehelper", "serve", str(noop), "--port", str(port),
                "--host", "127.0.0.1", "--name", "noop", "--enable_grpc", "false"]  # fmt: skip

    commands: dict[str, Any] = {"raw KServe": raw, "python model.py": model_py, "serve": serve}
    if image:
        commands["docker run"] = lambda port: [
            docker, "run", "--rm", "--network", "host", "--name", f"kservehelper-cold-{port}",
            image, "kservehelper", "serve", "/app", "--port", str(port), "--name", image_model,
        ]  # fmt: skip
    return commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image", help="also time `docker run` of this image to ready")
    parser.add_argument("--image-model", default="blur-image", help="the image's model name")
    parser.add_argument("--docker", default="docker")
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    for folder in (pathlib.Path(kservehelper.__file__).parent, HERE / "models"):
        compileall.compile_dir(folder, quiet=1)

    imports: dict[str, list[float]] = {"import kservehelper": [], "import kserve": [],
                                       "KServeModel (imports kserve)": []}  # fmt: skip
    commands = start_commands(args.docker, args.image, args.image_model)
    ready: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        imports["import kservehelper"].append(import_seconds("import kservehelper"))
        imports["import kserve"].append(import_seconds("import kserve"))
        imports["KServeModel (imports kserve)"].append(
            import_seconds("import kservehelper.serving.model")
        )
        for name, command in commands.items():
            port = free_port()
            model = args.image_model if name == "docker run" else "noop"
            url = f"http://127.0.0.1:{port}/v1/models/{model}"
            cleanup = None
            if name == "docker run":
                cleanup = [args.docker, "rm", "--force", f"kservehelper-cold-{port}"]
            ready[name].append(seconds_to_ready(command(port), url, cleanup=cleanup))
    med = statistics.median
    figures = {
        "import_s": {k: med(v) for k, v in imports.items()},
        "ready_s": {k: med(v) for k, v in ready.items()},
        "rounds": {"import_s": imports, "ready_s": ready},
    }
    base = figures["ready_s"]["raw KServe"]
    print("| measure | seconds | vs raw KServe |")
    print("|---|---:|---:|")
    for name, value in figures["import_s"].items():
        print(f"| {name} | {value:.3f} | |")
    for name, value in figures["ready_s"].items():
        print(f"| start to ready: {name} | {value:.3f} | {value / base:.3f}x |")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
