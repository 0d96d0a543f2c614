"""Models producing output files, for the file-delivery end-to-end tests (pick with --class)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from kservehelper import KServeModel
from kservehelper.types import File, Input, Path


class ManyFiles:
    """``count`` files of ``size`` random bytes as one ``List[Path]`` prediction."""

    def predict(
        self,
        count: int = Input(default=2, ge=1, le=64),
        size: int = Input(default=1000, ge=1),
        fail: bool = Input(default=False),
    ) -> list[Path]:
        paths = []
        for index in range(count):
            path = KServeModel.generate_filepath(f"part-{index}.bin")
            with open(path, "wb") as handle:
                remaining = size
                while remaining > 0:
                    chunk = min(remaining, 1 << 20)
                    handle.write(os.urandom(chunk))
                    remaining -= chunk
            paths.append(Path(path))
        if fail:
            raise RuntimeError("the model failed after writing its files")
        return paths


class FileStream:
    """A stream of files: each is uploaded as it is produced and its URL streamed."""

    def predict(self, count: int = Input(default=3, ge=1, le=10)) -> Iterator[Path]:
        for index in range(count):
            path = KServeModel.generate_filepath(f"frame-{index}.txt")
            path.write_text(f"frame {index}")
            yield Path(path)


class EchoFile:
    """Returns its file input's size and name: exercises URL inputs."""

    def predict(self, document: File = Input(description="any file")) -> dict:
        return {"size": len(document.read_bytes()), "name": document.name}
