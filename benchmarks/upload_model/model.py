"""The benchmark's model: returns pre-made files (hard links, so writing them costs nothing and
only the delivery is measured)."""

from __future__ import annotations

import os

from kservehelper import KServeModel
from kservehelper.types import Input, Path


class Model:
    def predict(
        self,
        source_dir: str = Input(description="folder of pre-made files to return"),
    ) -> list[Path]:
        paths = []
        for name in sorted(os.listdir(source_dir)):
            target = KServeModel.generate_filepath(name)
            os.link(os.path.join(source_dir, name), target)
            paths.append(Path(target))
        return paths
