"""kservehelper 2.0's names warn once each, and kservehelper's servers and commands show them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from kservehelper.deprecation import KServeHelperDeprecationWarning


def test_the_warning_is_a_deprecation_warning() -> None:
    assert issubclass(KServeHelperDeprecationWarning, DeprecationWarning)


def test_kservehelper_schema_shows_a_2_0_name_once(tmp_path: Path) -> None:
    """Python hides DeprecationWarning outside __main__; `kservehelper schema` (and serve,
    predict) imports the model as a module, so without show_deprecations() nothing would
    tell the user their 2.0 names are going away."""
    (tmp_path / "model.py").write_text(
        textwrap.dedent(
            """
            from kservehelper.types import Input, URLPath


            class Model:
                def predict(self, image: URLPath = Input(description="an image")) -> str:
                    return str(image)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "kservehelper", "schema", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("KServeHelperDeprecationWarning") == 1
    assert "URLPath" in done.stderr and "kservehelper.types.Path" in done.stderr
    assert "model.py:2" in done.stderr  # points at the user's import line
