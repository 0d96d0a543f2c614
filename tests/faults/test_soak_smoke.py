"""A few seconds of benchmarks/soak.py: the script works, and the goals it checks hold."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from tests.conftest import REPO


def test_a_short_soak_leaves_nothing_behind(tmp_path: pathlib.Path) -> None:
    figures = tmp_path / "soak.json"
    command = [sys.executable, str(REPO / "benchmarks" / "soak.py"), "--duration", "8"]
    command += ["--clients", "4", "--json", str(figures)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    soak = json.loads(figures.read_text())
    assert soak["requests"] > 0
    assert soak["leftover_files"] == 0
    assert soak["exit_status"] == 0
    assert soak["left_in_tmp_after_exit"] == []
    assert "| leftover files after traffic | 0 | 0 |" in result.stdout
