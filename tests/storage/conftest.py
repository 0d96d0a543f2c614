"""Storage tests use the real components in ``tests/fixtures_storage.py``."""

from __future__ import annotations

import sys
from pathlib import Path

if "fixtures_storage" not in sys.modules:  # not yet registered by tests/conftest.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fixtures_storage import *  # noqa: F403
