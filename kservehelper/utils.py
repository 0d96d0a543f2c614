"""kservehelper 2.0's module path ``kservehelper.utils`` (``upload_files``, ``flock``).

Kept as adapters (:mod:`kservehelper.compat.utils`), with a ``DeprecationWarning``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kservehelper.compat.utils import flock, upload_files

__all__ = ["flock", "upload_files"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kservehelper.compat import utils

        return getattr(utils, name)
    raise AttributeError(f"module 'kservehelper.utils' has no attribute {name!r}")
