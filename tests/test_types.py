"""Unit tests for the seed API types."""

from __future__ import annotations

import pathlib

from kservehelper import File, Input, Path, Secret
from kservehelper.types import MISSING, InputSpec, is_file_type


def test_input_without_default_is_required() -> None:
    spec = Input(description="x")
    assert isinstance(spec, InputSpec)
    assert spec.required and spec.default is MISSING
    assert not Input(default=None).required


def test_path_and_file_are_real_paths() -> None:
    assert isinstance(Path("/tmp/x"), pathlib.Path)
    assert is_file_type(File) and is_file_type(pathlib.Path) and not is_file_type(str)


def test_secret_hides_its_value() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert secret.get_secret_value() == "hunter2"
