"""Unit tests for output paths and inline delivery."""

from __future__ import annotations

import concurrent.futures
import pathlib
from typing import Any

import pytest
from pydantic import BaseModel

from kservehelper.errors import InputError, UploadError
from kservehelper.schema.signature import OutputKind
from kservehelper.serving import outputs
from kservehelper.types import Path


def test_generate_filepath_is_unique_under_concurrency(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSERVEHELPER_OUTPUT_DIR", str(tmp_path))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: outputs.generate_filepath("image.jpg"), range(2000)))
    assert len(set(paths)) == 2000
    assert all(p.parent == tmp_path and p.name.endswith("-image.jpg") for p in paths)


def test_generate_filepath_keeps_only_a_safe_base_name(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSERVEHELPER_OUTPUT_DIR", str(tmp_path))
    path = outputs.generate_filepath("../../etc/pass wd")
    assert path.parent == tmp_path
    assert path.name.endswith("-pass_wd")


def test_inline_limit_is_enforced(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSERVEHELPER_INLINE_OUTPUT_LIMIT", "10")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 11)
    with pytest.raises(InputError, match="upload_webhook"):
        outputs.inline_data_uris([big])


def test_move_to_folder_strips_the_unique_prefix_and_never_overwrites(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KSERVEHELPER_OUTPUT_DIR", str(tmp_path / "out"))
    first, second = outputs.generate_filepath("a.txt"), outputs.generate_filepath("a.txt")
    first.write_text("1")
    second.write_text("2")
    moved = outputs.move_to_folder([first, second], tmp_path / "dest")
    assert [p.name for p in moved] == ["a.txt", "a-1.txt"]
    assert [p.read_text() for p in moved] == ["1", "2"]


@pytest.mark.parametrize(
    ("kind", "make", "files"),
    [
        (OutputKind.VALUE, lambda p: {"answer": 42}, None),
        (OutputKind.VALUE, lambda p: p, 1),  # unannotated, returned a file
        (OutputKind.VALUE, lambda p: [p, p], 2),
        (OutputKind.VALUE, lambda p: [], None),  # an empty list is a value
        (OutputKind.FILE, lambda p: p, 1),
        (OutputKind.FILES, lambda p: (p,), 1),
    ],
)
def test_result_files_by_output_kind(
    tmp_path: pathlib.Path, kind: OutputKind, make: Any, files: int | None
) -> None:
    made = tmp_path / "out.txt"
    made.write_text("x")
    found = outputs.result_files(kind, "predict", make(Path(made)))
    assert (None if found is None else len(found)) == files


def test_result_files_reports_what_is_wrong(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TypeError, match="annotated to return a list of files"):
        outputs.result_files(OutputKind.FILES, "predict", "not a list")
    with pytest.raises(UploadError, match="not an existing file"):
        outputs.result_files(OutputKind.FILE, "predict", Path(tmp_path / "missing.bin"))


def test_value_response_shapes() -> None:
    class Result(BaseModel):
        label: str

    assert outputs.value_response({"a": 1}) == {"a": 1}
    assert outputs.value_response(Result(label="cat")) == {"output": {"label": "cat"}}
    assert outputs.value_response([1, 2]) == {"output": [1, 2]}
