"""kservehelper: serve a plain Python model class on KServe, and build its image.

Public API::

    from kservehelper import KServeModel, Input, Path, File, Secret, batch
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kservehelper.types import File, Input, Path, Secret

__version__ = "3.0.0.dev0"

__all__ = ["File", "Input", "KServeModel", "Path", "Secret", "__version__", "batch"]

if TYPE_CHECKING:
    from kservehelper.serving.batching import batch
    from kservehelper.serving.model import KServeModel


def __getattr__(name: str) -> Any:
    # KServeModel imports kserve (and with it FastAPI, numpy, ...): only pay for that when
    # it is used, so `kservehelper build` and `from kservehelper.types import Input` stay light.
    if name == "KServeModel":
        from kservehelper.serving.model import KServeModel

        return KServeModel
    if name == "batch":
        from kservehelper.serving.batching import batch

        return batch
    raise AttributeError(f"module 'kservehelper' has no attribute {name!r}")
