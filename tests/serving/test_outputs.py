"""Unit tests for output paths and inline delivery."""

from __future__ import annotations

import concurrent.futures
import pathlib

import pytest

from kservehelper.errors import InputError
from kservehelper.serving import outputs


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
