"""kservehelper 2.0's module path ``kservehelper.model``.

``from kservehelper.model import KServeModel`` keeps working (with a ``DeprecationWarning``);
new code imports ``from kservehelper import KServeModel``. See :mod:`kservehelper.compat`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kservehelper.compat.model import KServeModel

__all__ = ["KServeModel"]


def __getattr__(name: str) -> Any:
    # Resolved on use, so importing this module costs nothing until the class is needed.
    if name == "KServeModel":
        from kservehelper.compat import warn_deprecated
        from kservehelper.compat.model import KServeModel

        warn_deprecated("kservehelper.model.KServeModel", "kservehelper.KServeModel")

        return KServeModel
    raise AttributeError(f"module 'kservehelper.model' has no attribute {name!r}")
